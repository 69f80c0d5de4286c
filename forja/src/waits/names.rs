//! Primitive ids and names: every primitive gets an id unique in its tree
//! (from the wait table) and a name in shared memory, so any process — and
//! the kernel — can say "`tenedor 3`" instead of an address.

pub use super::kind::Kind;
use super::table::{self, Table};
use std::sync::atomic::Ordering;

/// A fresh id for a primitive of kind `kind` (0 if the wait table cannot be
/// made: the primitive then has no name, and still works).
pub(crate) fn new_id(kind: Kind) -> u32 {
    let Ok(t) = table::current() else { return 0 };
    let id = t.header.next_id.fetch_add(1, Ordering::Relaxed);
    let slot = t.name_slot(id);
    slot.id.store(0, Ordering::Release);
    slot.kind.store(kind as u32, Ordering::Relaxed);
    slot.name.store("");
    slot.id.store(id, Ordering::Release);
    id
}

/// Names primitive `id` (cut to 56 bytes), for every process of the tree.
pub(crate) fn set_name(id: u32, name: &str) {
    if id == 0 {
        return;
    }
    if let Some(t) = table::existing() {
        let slot = t.name_slot(id);
        if slot.id.load(Ordering::Acquire) == id {
            slot.name.store(name);
        }
    }
}

/// The name of primitive `id` of kind `kind`: the one given with
/// `with_name`, else `Lock 3` (kind and id: unique in the tree).
pub(crate) fn name_in(t: &Table, id: u32, kind: Kind) -> String {
    if id != 0 {
        let slot = t.name_slot(id);
        if slot.id.load(Ordering::Acquire) == id {
            let name = slot.name.load();
            if !name.is_empty() {
                return name;
            }
        }
        return format!("{} {id}", kind.label());
    }
    kind.label().to_owned()
}

/// The name of primitive `id` (see [`name_in`]).
pub(crate) fn name_of(id: u32, kind: Kind) -> String {
    match table::existing() {
        Some(t) => name_in(&t, id, kind),
        None => format!("{} {id}", kind.label()),
    }
}

/// Gives a primitive type `with_name`, `name` and its wait site; `$id` is
/// the path of its `u32` id field (from [`new_id`]).
macro_rules! named {
    ([$($gen:tt)*] $ty:ty, $kind:expr, $($id:ident).+) => {
        impl<$($gen)*> $ty {
            /// Names it, for [`forja::waits()`](crate::waits()) and deadlock
            /// messages: every process of the tree sees the name (at most
            /// 56 bytes are kept).
            pub fn with_name(self, name: &str) -> Self {
                $crate::waits::names::set_name(self.$($id).+, name);
                self
            }

            /// Its name: the one given with `with_name`, else its kind and a
            /// number unique in the tree of processes (say `Lock 3`).
            pub fn name(&self) -> String {
                $crate::waits::names::name_of(self.$($id).+, $kind)
            }

            #[allow(dead_code)]
            pub(crate) fn wait_site(&self) -> $crate::waits::kind::Site {
                $crate::waits::kind::Site::new(self.$($id).+, $kind)
            }
        }
    };
}
pub(crate) use named;
