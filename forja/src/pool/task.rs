//! A task on the wire: what a task may be (a function pointer, never a
//! capturing closure), how it and its context reach a worker that is a fork
//! of the parent, and the loader stamp that tells whether a worker has the
//! task's code at all.
//!
//! # Why only function pointers
//!
//! A worker is a copy of the parent *as it was when the worker was forked*.
//! Anything the parent allocated later (a `Vec`, a `Box::leak`ed `&'static`
//! slice, a `String`) does not exist there, so a task must not carry a
//! pointer into the parent's memory: a closure's captured bytes, copied to a
//! worker, could hold one, and reading through it there is undefined
//! behaviour from safe code. So a task is a `fn` pointer (a `fn` item, or a
//! closure that captures nothing, which Rust coerces to one), and what a task
//! needs travels separately: its arguments and its shipped context encoded
//! with serde, or the pool's context inherited at fork (see the
//! [`pool`](super) docs).
//!
//! The one address a task message carries is *code*: the function pointer
//! and the trampoline that calls it. Code is not allocated: it is valid in
//! every fork of the process, as long as it was loaded before the fork. A
//! notebook cell is a library loaded later, so the pool records the loader's
//! count of loaded objects ([`loaded_objects_stamp`]) when it forks, and
//! re-forks its workers before they get a task submitted after a later load.

use super::protocol::TO_WORKER_TASK;
use crate::codec;
use crate::error::Result;
use crate::fork::panic_message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::marker::PhantomData;

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
        // SAFETY: `data` is the `&mut acc` passed below, alive and not
        // otherwise borrowed during the call; `info` points to `size` valid
        // bytes, and `dlpi_adds` is read only when they reach past it (it
        // ends where `dlpi_subs` begins).
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
    // libc: nix has no dl_iterate_phdr.
    // SAFETY: `cb` only reads the entries it is given and writes `acc`,
    // which outlives the call; it never unwinds.
    unsafe { libc::dl_iterate_phdr(Some(cb), &mut acc as *mut Acc as *mut libc::c_void) };
    acc.adds.unwrap_or(acc.count)
}

/// The shapes a task can have. Private: every shape's `Fn` is a `fn`
/// pointer type, which is what makes shipping a task's address sound.
pub(crate) mod sealed {
    use std::marker::PhantomData;

    /// A task's shape: what the function pointer is, and how a worker calls
    /// it with the context and one item.
    pub trait Shape<Ctx>: 'static {
        /// The function pointer type.
        type Fn: Copy + 'static;
        /// What the task gets per item.
        type Arg;
        /// What the task returns.
        type Out;
        /// Runs it.
        fn call(f: Self::Fn, ctx: &Ctx, arg: Self::Arg) -> Self::Out;
    }

    /// `fn(A) -> R`.
    pub struct One<A, R>(PhantomData<fn(A) -> R>);
    /// `fn(&C, A) -> R`.
    pub struct OneWith<A, R>(PhantomData<fn(A) -> R>);
    /// A tuple per item, spread into `fn(A, B, ..) -> R`.
    pub struct Spread<Args, R>(PhantomData<fn(Args) -> R>);
    /// A tuple per item, spread into `fn(&C, A, B, ..) -> R`.
    pub struct SpreadWith<Args, R>(PhantomData<fn(Args) -> R>);

    /// Only tuples are [`StarArgs`](super::StarArgs).
    pub trait Tuple {}
}
use sealed::{One, OneWith, Shape, Spread, SpreadWith, Tuple};

/// The argument tuples of [`Pool::starmap`](super::Pool::starmap): a tuple of
/// 1 to 6 elements, and the `fn` pointer type its elements are the
/// arguments of (`(A, B)`: `fn(A, B) -> R`). A closure that captures nothing
/// becomes one; a `fn` item needs a cast (`count as fn(u64, u64) -> u64`) or a
/// closure around it (`|a, b| count(a, b)`), because Rust turns a `fn` item
/// into a pointer only where the pointer type is already known. Sealed.
pub trait StarArgs<R>: Tuple + Sized {
    /// The function pointer type that takes this tuple's elements.
    type Fn: Copy + 'static;
    /// Calls `f` with the tuple's elements as arguments.
    fn star_call(f: Self::Fn, args: Self) -> R;
}

/// The argument tuples of [`Pool::starmap_with`](super::Pool::starmap_with)
/// and of the pool context's `starmap`: like [`StarArgs`], with the context
/// first (`(A, B)`: `fn(&C, A, B) -> R`). Sealed.
pub trait StarArgsWith<C, R>: Tuple + Sized {
    /// The function pointer type that takes the context and this tuple's
    /// elements.
    type Fn: Copy + 'static;
    /// Calls `f` with the context and the tuple's elements as arguments.
    fn star_call_with(f: Self::Fn, ctx: &C, args: Self) -> R;
}

macro_rules! star_args {
    ($($a:ident),*) => {
        impl<$($a,)*> Tuple for ($($a,)*) {}
        impl<$($a: 'static,)* R: 'static> StarArgs<R> for ($($a,)*) {
            type Fn = fn($($a),*) -> R;
            #[allow(non_snake_case)]
            fn star_call(f: Self::Fn, ($($a,)*): Self) -> R {
                f($($a),*)
            }
        }
        impl<Ctx: 'static, $($a: 'static,)* R: 'static> StarArgsWith<Ctx, R> for ($($a,)*) {
            type Fn = fn(&Ctx, $($a),*) -> R;
            #[allow(non_snake_case)]
            fn star_call_with(f: Self::Fn, ctx: &Ctx, ($($a,)*): Self) -> R {
                f(ctx, $($a),*)
            }
        }
    };
}
star_args!(A);
star_args!(A, B);
star_args!(A, B, C);
star_args!(A, B, C, D);
star_args!(A, B, C, D, E);
star_args!(A, B, C, D, E, G);

impl<A: 'static, R: 'static> Shape<()> for One<A, R> {
    type Fn = fn(A) -> R;
    type Arg = A;
    type Out = R;
    fn call(f: Self::Fn, _: &(), arg: A) -> R {
        f(arg)
    }
}

impl<C: 'static, A: 'static, R: 'static> Shape<C> for OneWith<A, R> {
    type Fn = fn(&C, A) -> R;
    type Arg = A;
    type Out = R;
    fn call(f: Self::Fn, ctx: &C, arg: A) -> R {
        f(ctx, arg)
    }
}

impl<Args: StarArgs<R> + 'static, R: 'static> Shape<()> for Spread<Args, R> {
    type Fn = Args::Fn;
    type Arg = Args;
    type Out = R;
    fn call(f: Self::Fn, _: &(), args: Args) -> R {
        Args::star_call(f, args)
    }
}

impl<C, Args: StarArgsWith<C, R> + 'static, R: 'static> Shape<C> for SpreadWith<Args, R> {
    type Fn = Args::Fn;
    type Arg = Args;
    type Out = R;
    fn call(f: Self::Fn, ctx: &C, args: Args) -> R {
        Args::star_call_with(f, ctx, args)
    }
}

/// The address of function pointer `f`.
///
/// # Safety
/// `F` is a function pointer type (every [`Shape::Fn`] is: the trait is
/// sealed).
unsafe fn code_address<F: Copy>(f: F) -> usize {
    assert_eq!(size_of::<F>(), size_of::<usize>(), "a task is a fn pointer");
    // SAFETY: F is a fn pointer, the size of a usize.
    unsafe { std::mem::transmute_copy::<F, usize>(&f) }
}

/// The function pointer at `address`.
///
/// # Safety
/// `address` came from [`code_address`] of the same `F`, in a process that
/// this one is a fork of, and the code was loaded before the fork.
unsafe fn from_code_address<F: Copy>(address: usize) -> F {
    assert_eq!(size_of::<F>(), size_of::<usize>(), "a task is a fn pointer");
    // SAFETY: the caller's promise: a valid F in this process.
    unsafe { std::mem::transmute_copy::<usize, F>(&address) }
}

/// Where a task's context comes from, in the worker.
pub(super) struct TaskContext<'a> {
    /// The shipped context's encoding (empty for tasks without one).
    pub(super) shipped: &'a [u8],
    /// The pool's context, inherited at fork.
    pub(super) inherited: &'a (dyn Any + Send + Sync),
}

/// Runs one chunk of tasks in a worker: finds the task and its context,
/// decodes the arguments, calls the task on each under `catch_unwind`,
/// appends the encoded results to `out`: `Vec<R>` when every task returned
/// (`Ok(true)`, the usual case: no per-item tag), `Vec<Result<R, String>>`
/// when some panicked (`Ok(false)`).
pub(super) type Trampoline = unsafe fn(
    usize,
    TaskContext<'_>,
    &[u8],
    &mut Vec<u8>,
    fn() -> Option<String>,
) -> Result<bool, String>;

/// The [`Trampoline`] of tasks whose context is shipped (`()` for tasks
/// without one).
///
/// # Safety
/// `task` came from [`code_address`] of an `F`, see [`from_code_address`].
unsafe fn run_shipped<K, Ctx>(
    task: usize,
    ctx: TaskContext<'_>,
    args: &[u8],
    out: &mut Vec<u8>,
    last_panic: fn() -> Option<String>,
) -> Result<bool, String>
where
    K: Shape<Ctx>,
    Ctx: DeserializeOwned,
    K::Arg: DeserializeOwned,
    K::Out: Serialize,
{
    // SAFETY: the caller's promise.
    let f: K::Fn = unsafe { from_code_address(task) };
    let ctx: Ctx = postcard::from_bytes(ctx.shipped)
        .map_err(|e| format!("bad task context (the value given to a `_with` call): {e}"))?;
    run_items(|a| K::call(f, &ctx, a), args, out, last_panic)
}

/// The [`Trampoline`] of tasks that take the pool's own context.
///
/// # Safety
/// `task` came from [`code_address`] of an `F`, see [`from_code_address`].
unsafe fn run_inherited<K, Ctx>(
    task: usize,
    ctx: TaskContext<'_>,
    args: &[u8],
    out: &mut Vec<u8>,
    last_panic: fn() -> Option<String>,
) -> Result<bool, String>
where
    K: Shape<Ctx>,
    Ctx: Any,
    K::Arg: DeserializeOwned,
    K::Out: Serialize,
{
    // SAFETY: the caller's promise.
    let f: K::Fn = unsafe { from_code_address(task) };
    let ctx: &Ctx = ctx.inherited.downcast_ref().ok_or_else(|| {
        format!(
            "the pool's context is not a {} (a task of another pool?)",
            std::any::type_name::<Ctx>()
        )
    })?;
    run_items(|a| K::call(f, ctx, a), args, out, last_panic)
}

/// The common part of both trampolines: `call` on each decoded argument.
fn run_items<A, R>(
    call: impl Fn(A) -> R,
    args: &[u8],
    out: &mut Vec<u8>,
    last_panic: fn() -> Option<String>,
) -> Result<bool, String>
where
    A: DeserializeOwned,
    R: Serialize,
{
    let items: Vec<A> =
        postcard::from_bytes(args).map_err(|e| format!("bad task arguments: {e}"))?;
    let run = |a: A| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(a))).map_err(|payload| {
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

/// A call's tasks, ready to be cut into messages: the task's address, its
/// trampoline's, and its encoded context.
pub(super) struct TaskCode<A> {
    trampoline: Trampoline,
    task: usize,
    context: Vec<u8>,
    _args: PhantomData<fn(A)>,
}

impl<A: Serialize> TaskCode<A> {
    /// Task `f`, given `ctx` (encoded now, once, and sent with every task
    /// message of the call); `&()` for tasks without a context.
    pub(super) fn shipped<K, Ctx>(f: K::Fn, ctx: &Ctx) -> Result<Self>
    where
        K: Shape<Ctx, Arg = A>,
        Ctx: Serialize + DeserializeOwned,
        A: DeserializeOwned,
        K::Out: Serialize,
    {
        let mut context = Vec::new();
        codec::encode_into(&mut context, ctx, "a pool task's context")?;
        Ok(TaskCode {
            trampoline: run_shipped::<K, Ctx>,
            // SAFETY: every `Shape::Fn` is a fn pointer (the trait is sealed).
            task: unsafe { code_address(f) },
            context,
            _args: PhantomData,
        })
    }

    /// Task `f`, given the pool's context, which every worker inherited.
    pub(super) fn inherited<K, Ctx>(f: K::Fn) -> Self
    where
        K: Shape<Ctx, Arg = A>,
        Ctx: Any,
        A: DeserializeOwned,
        K::Out: Serialize,
    {
        TaskCode {
            trampoline: run_inherited::<K, Ctx>,
            // SAFETY: every `Shape::Fn` is a fn pointer (the trait is sealed).
            task: unsafe { code_address(f) },
            context: Vec::new(),
            _args: PhantomData,
        }
    }

    /// The task message of `args`: kind, job and chunk (filled in at
    /// submit), trampoline, task, context, encoded arguments (layout in
    /// [`protocol`](super::protocol)).
    fn message(&self, args: &[A]) -> Result<Vec<u8>> {
        let mut message = Vec::with_capacity(HEADER_LEN + self.context.len() + 16);
        message.push(TO_WORKER_TASK);
        message.extend_from_slice(&[0; 12]);
        message.extend_from_slice(&(self.trampoline as usize as u64).to_le_bytes());
        message.extend_from_slice(&(self.task as u64).to_le_bytes());
        message.extend_from_slice(&(self.context.len() as u32).to_le_bytes());
        message.extend_from_slice(&self.context);
        codec::encode_into(&mut message, args, "a pool task")?;
        Ok(message)
    }

    /// The task messages of `items`, `chunksize` items per message.
    pub(super) fn chunk_messages(&self, items: &[A], chunksize: usize) -> Result<Vec<Vec<u8>>> {
        items
            .chunks(chunksize.max(1))
            .map(|c| self.message(c))
            .collect()
    }
}

/// Bytes before a task message's context: kind, job, chunk, trampoline,
/// task, context length.
pub(super) const HEADER_LEN: usize = 1 + 8 + 4 + 8 + 8 + 4;

/// A task message, as the worker reads it.
pub(super) struct TaskMessage<'a> {
    /// Kind, job and chunk: copied into the result.
    pub(super) header: [u8; 13],
    pub(super) trampoline: usize,
    pub(super) task: usize,
    pub(super) context: &'a [u8],
    pub(super) args: &'a [u8],
}

impl<'a> TaskMessage<'a> {
    /// Splits a task message; `None` if it is not one (a stop).
    pub(super) fn parse(message: &'a [u8]) -> Option<Self> {
        if message.first() != Some(&TO_WORKER_TASK) || message.len() < HEADER_LEN {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(message[at..at + 8].try_into().expect("8"));
        let clen = u32::from_le_bytes(message[29..33].try_into().expect("4")) as usize;
        let (context, args) = message[HEADER_LEN..].split_at_checked(clen)?;
        Some(TaskMessage {
            header: message[..13].try_into().expect("13"),
            trampoline: word(13) as usize,
            task: word(21) as usize,
            context,
            args,
        })
    }
}
