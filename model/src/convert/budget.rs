//! What one conversion may spend, in proportion to what it converts.
//!
//! A conversion can produce more than it reads: an HTML link around many short lines becomes a
//! copy of its URL on every line (Quill has no links across lines), a Delta op's attributes apply
//! to every line its text holds, an export writes a link's URL again for each line it covers. A
//! 1 MB import once grew the server by 7 GB that way. So every conversion gets a [`Budget`] of
//! [`PER_INPUT_BYTE`] units per byte of its input plus [`FLOOR`], and spends it on
//! - the variable-size data it makes: text and attribute values copied into lines and runs,
//!   bytes written out;
//! - the steps of its own loops that are not constant per input byte (a search down the stack of
//!   open containers).
//!
//! and stops with [`ConvertError::TooLarge`] when it runs out. Fixed-size records (a `Line`, a
//! `Span`, a run) need no units: each stands for at least one byte of its input, so they grow
//! with it anyway. A superlinear path thus fails with an error instead of hanging, which is what
//! the tests rely on.
//!
//! An export's input is the document: [`document_size`] counts what the YText holds.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;

use yrs::types::text::{Diff, YChange};
use yrs::{Any, Out};

use super::ConvertError;

/// Units per byte of input. HTML export is the widest honest expansion: an escaped character
/// becomes up to 6 bytes (`&quot;`), an empty line 12 (`<p><br></p>\n`); 16 leaves room.
pub const PER_INPUT_BYTE: u64 = 16;

/// Units every conversion may spend whatever its size, so that a small document with a long link
/// over a few lines still converts: 1 MiB.
pub const FLOOR: u64 = 1 << 20;

/// Units a conversion may still spend. `Cell`, not `&mut`: the line builder and the nesting
/// context of one import both spend from it.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<u64>,
    input: usize,
}

impl Budget {
    pub fn for_input(input: usize) -> Budget {
        let units = (input as u64).saturating_mul(PER_INPUT_BYTE);
        Budget {
            left: Cell::new(units.saturating_add(FLOOR)),
            input,
        }
    }

    /// Spends `units`, or fails (and stays spent) if fewer are left.
    pub fn spend(&self, units: usize) -> Result<(), ConvertError> {
        let left = self.left.get();
        match left.checked_sub(units as u64) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => {
                self.left.set(0);
                Err(ConvertError::TooLarge { input: self.input })
            }
        }
    }
}

/// The bytes the YText's content takes, as the input size of an export: its text, each chunk's
/// attribute names and values. A string value (a URL, a code language) counts once however many
/// chunks share it: chunks cut by other formats inside one link all hold the link format's one
/// `Arc`, and the document stores that URL once.
pub(crate) fn document_size(diff: &[Diff<YChange>]) -> usize {
    let mut seen: HashSet<*const u8> = HashSet::new();
    let mut size = 0;
    for chunk in diff {
        size += match &chunk.insert {
            Out::Any(value) => value_size(value, &mut seen),
            // Nested types are not exported; a pointer's worth stands for them.
            _ => SCALAR,
        };
        for (name, value) in chunk.attributes.iter().flat_map(|attrs| attrs.iter()) {
            size += name.len() + value_size(value, &mut seen);
        }
    }
    size
}

/// What a scalar `Any` (a number, a boolean, null) counts for.
const SCALAR: usize = 8;

fn value_size(value: &Any, seen: &mut HashSet<*const u8>) -> usize {
    match value {
        Any::String(s) if seen.insert(Arc::as_ptr(s).cast::<u8>()) => s.len(),
        Any::String(_) => 0,
        Any::Buffer(bytes) => bytes.len(),
        Any::Array(items) => items.iter().map(|item| value_size(item, seen)).sum(),
        Any::Map(entries) => entries
            .iter()
            .map(|(key, item)| key.len() + value_size(item, seen))
            .sum(),
        _ => SCALAR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_past_the_budget_fails_and_stays_failed() {
        let budget = Budget::for_input(1);
        budget.spend((PER_INPUT_BYTE + FLOOR) as usize).unwrap();
        assert!(matches!(
            budget.spend(1),
            Err(ConvertError::TooLarge { input: 1 })
        ));
        assert!(budget.spend(0).is_ok());
        assert!(budget.spend(1).is_err());
    }
}
