//! What kind of primitive a wait is on, and the word its default name
//! starts with.

/// What kind of primitive a wait is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// Something forja does not know.
    Other = 0,
    /// A [`Lock`](crate::Lock).
    Lock = 1,
    /// An [`RLock`](crate::RLock).
    RLock = 2,
    /// A [`Semaphore`](crate::Semaphore) or [`BoundedSemaphore`](crate::BoundedSemaphore).
    Semaphore = 3,
    /// A [`Condition`](crate::Condition).
    Condition = 4,
    /// An [`Event`](crate::Event).
    Event = 5,
    /// A [`Barrier`](crate::Barrier).
    Barrier = 6,
    /// A [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue) or [`JoinableQueue`](crate::JoinableQueue).
    Queue = 7,
    /// A pipe end ([`Connection`](crate::Connection), [`Receiver`](crate::Receiver)).
    Connection = 8,
    /// A [`Process`](crate::Process) being joined.
    Process = 9,
    /// The result of a [`Pool`](crate::Pool) call.
    PoolResult = 10,
    /// The lock of a [`Value`](crate::Value), [`Array`](crate::Array) or shared block.
    DataLock = 11,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Kind {
        match v {
            1 => Kind::Lock,
            2 => Kind::RLock,
            3 => Kind::Semaphore,
            4 => Kind::Condition,
            5 => Kind::Event,
            6 => Kind::Barrier,
            7 => Kind::Queue,
            8 => Kind::Connection,
            9 => Kind::Process,
            10 => Kind::PoolResult,
            11 => Kind::DataLock,
            _ => Kind::Other,
        }
    }

    /// The word a default name starts with.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Other => "wait",
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::Condition => "Condition",
            Kind::Event => "Event",
            Kind::Barrier => "Barrier",
            Kind::Queue => "Queue",
            Kind::Connection => "Pipe",
            Kind::Process => "Process",
            Kind::PoolResult => "Pool",
            Kind::DataLock => "Value",
        }
    }
}

/// What a blocking call waits on: the primitive's id and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    pub(crate) id: u32,
    pub(crate) kind: Kind,
}

impl Site {
    pub(crate) const fn new(id: u32, kind: Kind) -> Site {
        Site { id, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in 0..12 {
            assert_eq!(Kind::from_u32(k) as u32, k);
        }
    }
}
