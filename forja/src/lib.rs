//! # forja
//!
//! Python-`multiprocessing`-style process tools for Rust: [`Process`], [`Pipe`],
//! [`Queue`], [`Lock`], [`Pool`], [`Value`], [`Array`] and relatives.
//!
//! Processes are created with `fork`, so a closure runs in the child. Every
//! handle is a nameable `'static` type, so it can be kept in a notebook
//! variable and used in a later cell of the forja Jupyter kernel.
//!
//! ```
//! use forja::prelude::*;
//!
//! let mut p = Process::new(|| println!("hello from a child")).name("greeter");
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(p.exitcode(), Some(0));
//! ```
#![warn(missing_docs)]

pub mod display;
pub mod error;

pub use error::{Error, Result};

/// Everything a notebook cell usually needs: `use forja::prelude::*;`.
pub mod prelude {
    pub use crate::error::{Error, Result};
}
