//! Plain text: the document's characters, formatting dropped.

use yrs::{GetString, ReadTxn, TextRef};

use super::attrs::{Block, Marks};
use super::budget::Budget;
use super::lines::{Line, LineBuilder};
use super::ConvertError;

/// The text exactly as stored (its final `"\n"` included), embeds left out.
pub(crate) fn render(content: &TextRef, txn: &impl ReadTxn) -> String {
    content.get_string(txn)
}

/// One unformatted line per `"\n"`. Windows line ends (`"\r\n"`) count as `"\n"`, so a `"\r"`
/// does not linger at the end of every line; a final `"\n"` is added when missing, as Quill
/// requires.
pub(crate) fn parse(input: &str, budget: &Budget) -> Result<Vec<Line>, ConvertError> {
    let input = input.replace("\r\n", "\n");
    let body = input.strip_suffix('\n').unwrap_or(&input);
    let mut out = LineBuilder::new(budget);
    for line in body.split('\n') {
        out.push(line, &Marks::default())?;
        out.end_line(Block::Paragraph);
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        let budget = Budget::for_input(input.len());
        parse(input, &budget)
            .unwrap()
            .iter()
            .map(Line::text)
            .collect()
    }

    #[test]
    fn one_line_per_newline_and_always_a_final_one() {
        assert_eq!(texts(""), [""]);
        assert_eq!(texts("\n"), [""]);
        assert_eq!(texts("a"), ["a"]);
        assert_eq!(texts("a\n"), ["a"]);
        assert_eq!(texts("a\r\n\nb"), ["a", "", "b"]);
        assert_eq!(texts("*not markdown*\n"), ["*not markdown*"]);
    }
}
