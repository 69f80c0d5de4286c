//! A task on the wire: how a task's code and arguments reach a worker that
//! is a fork of the parent, and the loader stamp that tells whether a worker
//! has that code at all.

use super::protocol::TO_WORKER_TASK;
use crate::codec;
use crate::error::Result;
use crate::fork::panic_message;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How many shared objects the dynamic loader has loaded so far (never
/// decreases). Code loaded after a worker was forked is missing there.
pub(super) fn loaded_objects_stamp() -> u64 {
    struct Acc {
        adds: Option<u64>,
        count: u64,
    }
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: data is our Acc; info is valid for `size` bytes.
        unsafe {
            let acc = &mut *(data as *mut Acc);
            let need = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs);
            if size >= need {
                acc.adds = Some((*info).dlpi_adds);
                return 1; // the counter is the same in every entry: stop
            }
            acc.count += 1;
            0
        }
    }
    let mut acc = Acc {
        adds: None,
        count: 0,
    };
    // SAFETY: the callback only touches `acc`.
    unsafe { libc::dl_iterate_phdr(Some(cb), &mut acc as *mut Acc as *mut libc::c_void) };
    acc.adds.unwrap_or(acc.count)
}

/// Runs one chunk of tasks in a worker: decodes the arguments, calls the
/// task on each under `catch_unwind`, appends the encoded results to `out`:
/// `Vec<R>` when every task returned (`Ok(true)`, the usual case: no
/// per-item tag), `Vec<Result<R, String>>` when some panicked (`Ok(false)`).
pub(super) type Trampoline =
    unsafe fn(*const u8, &[u8], &mut Vec<u8>, fn() -> Option<String>) -> Result<bool, String>;

/// # Safety
/// `closure` points at the bytes of a valid `F` (copied from the parent).
unsafe fn run_chunk<F, A, R>(
    closure: *const u8,
    args: &[u8],
    out: &mut Vec<u8>,
    last_panic: fn() -> Option<String>,
) -> Result<bool, String>
where
    F: Fn(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize,
{
    // SAFETY: F is Copy, so a bitwise copy of its bytes is a valid F.
    let f: F = unsafe { std::ptr::read_unaligned(closure as *const F) };
    let items: Vec<A> =
        postcard::from_bytes(args).map_err(|e| format!("bad task arguments: {e}"))?;
    let run = |a: A| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(a))).map_err(|payload| {
            let msg = last_panic().unwrap_or_else(|| panic_message(&*payload));
            std::mem::forget(payload);
            msg
        })
    };
    let mut ok: Vec<R> = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    let mut mixed: Option<Vec<Result<R, String>>> = None;
    for a in items.by_ref() {
        match run(a) {
            Ok(r) => ok.push(r),
            Err(msg) => {
                let mut v: Vec<Result<R, String>> = ok.drain(..).map(Ok).collect();
                v.push(Err(msg));
                mixed = Some(v);
                break;
            }
        }
    }
    let taken = std::mem::take(out);
    let all_ok = mixed.is_none();
    let encoded = match mixed {
        None => postcard::to_extend(&ok, taken),
        Some(mut v) => {
            v.extend(items.map(run));
            postcard::to_extend(&v, taken)
        }
    };
    *out = encoded.map_err(|e| format!("could not encode the results: {e}"))?;
    Ok(all_ok)
}

/// Lays out a task message: kind, job and chunk (filled in at submit),
/// trampoline, closure bytes, encoded arguments.
fn task_message<F, A, R>(f: &F, args: &[A]) -> Result<Vec<u8>>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let tramp: Trampoline = run_chunk::<F, A, R>;
    let size = std::mem::size_of::<F>();
    let mut message = Vec::with_capacity(32 + size);
    message.push(TO_WORKER_TASK);
    message.extend_from_slice(&[0; 12]);
    message.extend_from_slice(&(tramp as usize as u64).to_le_bytes());
    message.extend_from_slice(&(size as u32).to_le_bytes());
    let at = message.len();
    message.reserve(size);
    // SAFETY: copies the closure's bytes (F is Copy: no ownership moves).
    // They are only read back as an F, in the worker.
    unsafe {
        std::ptr::copy_nonoverlapping(
            f as *const F as *const u8,
            message.as_mut_ptr().add(at),
            size,
        );
        message.set_len(at + size);
    }
    codec::encode_into(&mut message, args, "a pool task")?;
    Ok(message)
}

/// The task messages of `items`, `chunksize` items per message.
pub(super) fn chunk_messages<F, A, R>(f: &F, items: &[A], chunksize: usize) -> Result<Vec<Vec<u8>>>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    items
        .chunks(chunksize.max(1))
        .map(|c| task_message(f, c))
        .collect()
}
