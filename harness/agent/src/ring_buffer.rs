//! The trace ring buffer read in its binary form, as the kernel stores it.
//!
//! Reading `trace` makes the kernel format every event as text and look its addresses up
//! in kallsyms: for a loop of 20 000 kprobe hits that is about 250 M guest instructions,
//! eight times the loop itself. `per_cpu/cpuN/trace_pipe_raw` hands over the ring
//! buffer's pages as they are; each event is checked by its type id (which names the
//! event exactly) and by the address it recorded (which must lie inside the target
//! function), with the field offsets read from the event's `format` file.

use crate::resolve::Range;
use crate::tracefs::Tracefs;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// What an event says about the traced call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// One event per call (a probe, the function tracer).
    Call,
    /// function_graph's entry event.
    Entry,
    /// function_graph's return event.
    Return,
    /// A kernel stack (`events/ftrace/kernel_stack`) after an event, with the stack
    /// trace option; its field is the number of frames.
    Stack,
}

/// An event the mechanism writes: its type id and the field holding the traced address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventSpec {
    pub id: u16,
    pub offset: usize,
    pub size: usize,
    pub role: Role,
}

impl EventSpec {
    /// Reads `<dir>/format` (e.g. `events/ftrace/function`) for the event's id and the
    /// offset and size of `field`.
    pub(crate) fn read(tracefs: &Tracefs, dir: &str, field: &str, role: Role) -> Result<EventSpec> {
        let rel = format!("{dir}/format");
        let text = tracefs.read(&rel)?;
        parse_format(&text, field, role).with_context(|| format!("parsing {rel}"))
    }
}

fn parse_format(text: &str, field: &str, role: Role) -> Result<EventSpec> {
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("ID:"))
        .context("no `ID:` line")?
        .trim()
        .parse()
        .context("bad event id")?;
    let (offset, size) = field_place(text, field)?;
    if size != 4 && size != 8 {
        bail!("field `{field}` is {size} bytes, not an address or a count");
    }
    Ok(EventSpec {
        id,
        offset,
        size,
        role,
    })
}

/// The offset and size of field `name` in tracefs format text, whose field lines read
/// `\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;` (`events/*/format` and
/// `events/header_page` alike).
fn field_place(text: &str, name: &str) -> Result<(usize, usize)> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| {
            l.strip_prefix("field:")
                .and_then(|d| d.split(';').next())
                .and_then(|d| d.split_whitespace().last())
                == Some(name)
        })
        .with_context(|| format!("no field `{name}`"))?;
    let number = |key: &str| -> Result<usize> {
        line.split(';')
            .find_map(|p| p.trim().strip_prefix(key))
            .with_context(|| format!("field `{name}` has no {key}"))?
            .trim()
            .parse()
            .with_context(|| format!("field `{name}`: bad {key}"))
    };
    Ok((number("offset:")?, number("size:")?))
}

/// What the buffer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub calls: u64,
    pub entries: u64,
    pub returns: u64,
    /// Stack traces, and their frames together.
    pub stacks: u64,
    pub frames: u64,
    /// Events of other functions: counted where every function is traced
    /// ([`drain_and_count`]), refused everywhere else.
    pub elsewhere: Option<u64>,
}

impl Tally {
    /// The mechanism's events (stack traces are not events of their own).
    pub(crate) fn events(&self) -> u64 {
        self.calls + self.entries + self.returns
    }
}

/// Sizes from `events/header_page`: where the commit word and the data start, and how
/// large a sub-buffer (the unit `trace_pipe_raw` hands out) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageLayout {
    commit_offset: usize,
    commit_size: usize,
    data_offset: usize,
    page_size: usize,
}

fn parse_header_page(text: &str) -> Result<PageLayout> {
    let (commit_offset, commit_size) = field_place(text, "commit")?;
    let (data_offset, data_size) = field_place(text, "data")?;
    Ok(PageLayout {
        commit_offset,
        commit_size,
        data_offset,
        page_size: data_offset + data_size,
    })
}

/// The commit word's flags: events were lost before this page (and their count stored).
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;

/// Event header `type_len` values (`events/header_event`).
const PADDING: u32 = 29;
const TIME_EXTEND: u32 = 30;
const TIME_STAMP: u32 = 31;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn uint_at(b: &[u8], at: usize, size: usize) -> Option<u64> {
    match size {
        4 => u32_at(b, at).map(u64::from),
        8 => Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)),
        _ => None,
    }
}

/// Checks every event of one page against `specs` and `range`, adding to `tally`.
fn check_page(
    page: &[u8],
    layout: &PageLayout,
    specs: &[EventSpec],
    range: Range,
    tally: &mut Tally,
) -> Result<()> {
    let commit = uint_at(page, layout.commit_offset, layout.commit_size)
        .context("a ring-buffer page shorter than its header")?;
    if commit & MISSED_EVENTS != 0 {
        bail!("the ring buffer lost events before this page (it wrapped inside the loop)");
    }
    let len = usize::try_from(commit & !(MISSED_EVENTS | MISSED_STORED) & 0xffff_ffff)
        .context("page length")?;
    let data = page
        .get(layout.data_offset..layout.data_offset + len)
        .with_context(|| format!("a ring-buffer page claims {len} bytes of data"))?;
    let mut at = 0usize;
    while at < data.len() {
        let header = u32_at(data, at).context("a truncated event header")?;
        let (type_len, delta) = (header & 0x1f, header >> 5);
        let (size, payload) = match type_len {
            PADDING if delta == 0 => break, // the rest of the page is padding
            PADDING => (
                4 + u32_at(data, at + 4).context("padding length")? as usize,
                None,
            ),
            TIME_EXTEND | TIME_STAMP => (8, None),
            0 => {
                let n = u32_at(data, at + 4).context("event length")? as usize;
                (4 + n, Some((at + 8, n.saturating_sub(4))))
            }
            n => {
                let n = n as usize * 4;
                (4 + n, Some((at + 4, n)))
            }
        };
        if at + size > data.len() {
            bail!("a ring-buffer event of {size} bytes overruns its page");
        }
        if let Some((from, n)) = payload {
            check_event(&data[from..from + n], specs, range, tally)?;
        }
        at += size;
    }
    Ok(())
}

fn check_event(event: &[u8], specs: &[EventSpec], range: Range, tally: &mut Tally) -> Result<()> {
    let kind = u16::from_le_bytes(
        event
            .get(..2)
            .context("an event without its type")?
            .try_into()?,
    );
    let Some(spec) = specs.iter().find(|s| s.id == kind) else {
        bail!("the trace holds an event of type {kind}, which is not this mechanism's");
    };
    let address =
        uint_at(event, spec.offset, spec.size).context("an event shorter than its format")?;
    let count = match spec.role {
        Role::Stack => {
            // Not an address: the number of frames.
            tally.stacks += 1;
            tally.frames += address;
            return Ok(());
        }
        Role::Call => &mut tally.calls,
        Role::Entry => &mut tally.entries,
        Role::Return => &mut tally.returns,
    };
    if address < range.start || address >= range.end {
        if let Some(n) = tally.elsewhere.as_mut() {
            *n += 1;
            return Ok(());
        }
        bail!(
            "the trace holds an event at {address:#x}{}, outside the target function ({:#x}..{:#x})",
            crate::resolve::name_of(address).map_or_else(String::new, |n| format!(" ({n})")),
            range.start,
            range.end
        );
    }
    *count += 1;
    Ok(())
}

/// `events/header_page` answers only a read at offset 0 (the rest reads as end of file),
/// so it is read in one call with room to spare.
fn read_header_page(tracefs: &Tracefs) -> Result<String> {
    let path = tracefs.root().join("events/header_page");
    let mut buf = vec![0u8; 16 * 1024];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut buf))
        .with_context(|| format!("reading {}", path.display()))?;
    buf.truncate(n);
    String::from_utf8(buf).with_context(|| format!("{} is not text", path.display()))
}

/// Reads (and so empties) the whole ring buffer of every CPU, checking each event.
pub(crate) fn drain_and_check(
    tracefs: &Tracefs,
    specs: &[EventSpec],
    range: Range,
) -> Result<Tally> {
    drain_into(tracefs, specs, range, Tally::default())
}

/// Reads (and so empties) the whole ring buffer of every CPU, counting the target's
/// events and, apart, every other function's: what a tracer of every function leaves.
pub(crate) fn drain_and_count(
    tracefs: &Tracefs,
    specs: &[EventSpec],
    range: Range,
) -> Result<Tally> {
    let tally = Tally {
        elsewhere: Some(0),
        ..Tally::default()
    };
    drain_into(tracefs, specs, range, tally)
}

fn drain_into(
    tracefs: &Tracefs,
    specs: &[EventSpec],
    range: Range,
    mut tally: Tally,
) -> Result<Tally> {
    let layout =
        parse_header_page(&read_header_page(tracefs)?).context("parsing events/header_page")?;
    drain(tracefs, layout.page_size, &mut |page| {
        check_page(page, &layout, specs, range, &mut tally)
    })?;
    Ok(tally)
}

/// Reads every CPU's `trace_pipe_raw` to its end, a page at a time, handing each page to
/// `each`.
fn drain(
    tracefs: &Tracefs,
    page_size: usize,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let dir = tracefs.root().join("per_cpu");
    let mut page = vec![0u8; page_size];
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path().join("trace_pipe_raw");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        loop {
            // One read returns at most one page; an empty buffer says EAGAIN.
            let n = match file.read(&mut page) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            each(&page[..n]).with_context(|| format!("in {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FUNCTION_FORMAT: &str = "name: function\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;\n\nprint fmt: \" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip\n";
    const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n";

    #[test]
    fn formats_give_the_id_and_the_field() {
        let s = parse_format(FUNCTION_FORMAT, "ip", Role::Call).expect("parsed");
        assert_eq!((s.id, s.offset, s.size), (1, 8, 8));
        let p = parse_format(FUNCTION_FORMAT, "parent_ip", Role::Call).expect("parsed");
        assert_eq!(p.offset, 16);
        assert!(parse_format(FUNCTION_FORMAT, "func", Role::Call).is_err());
        // `common_pid` must not match a field named `pid`.
        assert!(parse_format(FUNCTION_FORMAT, "pid", Role::Call).is_err());
        let l = parse_header_page(HEADER_PAGE).expect("layout");
        assert_eq!(
            l,
            PageLayout {
                commit_offset: 8,
                commit_size: 8,
                data_offset: 16,
                page_size: 4096
            }
        );
    }

    /// A page as the kernel writes it: events of type 1 with an ip, a time extend, a
    /// padding event in the middle, then padding to the end.
    fn page(ips: &[u64], flags: u64) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            if i == 1 {
                data.extend_from_slice(&(TIME_EXTEND | (5 << 5)).to_le_bytes());
                data.extend_from_slice(&7u32.to_le_bytes());
                // A discarded event: padding with a length.
                data.extend_from_slice(&(PADDING | (1 << 5)).to_le_bytes());
                data.extend_from_slice(&8u32.to_le_bytes());
                data.extend_from_slice(&[0; 4]);
            }
            // 24 bytes of payload: type_len 6.
            data.extend_from_slice(&(6u32 | (3 << 5)).to_le_bytes());
            data.extend_from_slice(&1u16.to_le_bytes());
            data.extend_from_slice(&[0; 6]);
            data.extend_from_slice(&ip.to_le_bytes());
            data.extend_from_slice(&0u64.to_le_bytes());
        }
        let mut p = vec![0u8; 16];
        p[8..16].copy_from_slice(&((data.len() as u64) | flags).to_le_bytes());
        p.extend_from_slice(&data);
        p.resize(4096, 0);
        p
    }

    #[test]
    fn pages_are_walked_event_by_event() {
        let layout = parse_header_page(HEADER_PAGE).expect("layout");
        let spec = parse_format(FUNCTION_FORMAT, "ip", Role::Call).expect("spec");
        let range = Range {
            start: 0x1000,
            end: 0x1040,
        };
        let mut tally = Tally::default();
        check_page(
            &page(&[0x1004, 0x1004, 0x103f], 0),
            &layout,
            &[spec],
            range,
            &mut tally,
        )
        .expect("all ours");
        assert_eq!(tally.events(), 3);

        let err = check_page(
            &page(&[0x1004, 0x1040], 0),
            &layout,
            &[spec],
            range,
            &mut tally,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("outside the target function"), "{err}");

        let other = EventSpec { id: 2, ..spec };
        let err = check_page(&page(&[0x1004], 0), &layout, &[other], range, &mut tally)
            .unwrap_err()
            .to_string();
        assert!(err.contains("type 1, which is not"), "{err}");

        let err = check_page(
            &page(&[0x1004], MISSED_EVENTS),
            &layout,
            &[spec],
            range,
            &mut tally,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lost events"), "{err}");
    }

    #[test]
    fn a_page_that_lies_about_its_length_is_an_error() {
        let layout = parse_header_page(HEADER_PAGE).expect("layout");
        let spec = parse_format(FUNCTION_FORMAT, "ip", Role::Call).expect("spec");
        let mut p = page(&[0x1004], 0);
        p[8..16].copy_from_slice(&5000u64.to_le_bytes());
        let range = Range {
            start: 0,
            end: u64::MAX,
        };
        assert!(check_page(&p, &layout, &[spec], range, &mut Tally::default()).is_err());
        // An event whose length runs past the committed data.
        let mut p = page(&[0x1004], 0);
        p[8..16].copy_from_slice(&20u64.to_le_bytes());
        assert!(check_page(&p, &layout, &[spec], range, &mut Tally::default()).is_err());
    }

    proptest::proptest! {
        /// Whatever the kernel (or a corrupted buffer) hands over, the page walk ends
        /// with a verdict, never a panic or an endless loop.
        #[test]
        fn any_page_gives_a_verdict(page in proptest::collection::vec(proptest::num::u8::ANY, 0..4200)) {
            let layout = parse_header_page(HEADER_PAGE).expect("layout");
            let spec = parse_format(FUNCTION_FORMAT, "ip", Role::Call).expect("spec");
            let range = Range { start: 0, end: u64::MAX };
            let _ = check_page(&page, &layout, &[spec], range, &mut Tally::default());
        }

        #[test]
        fn any_format_text_parses_or_is_refused(text in "\\PC*", field in "[a-z_]{1,12}") {
            let _ = parse_format(&text, &field, Role::Call);
            let _ = parse_header_page(&text);
        }

        /// A well-formed page of n in-range events counts exactly n.
        #[test]
        fn well_formed_pages_count_every_event(ips in proptest::collection::vec(0x1000u64..0x1040, 1..100)) {
            let layout = parse_header_page(HEADER_PAGE).expect("layout");
            let spec = parse_format(FUNCTION_FORMAT, "ip", Role::Call).expect("spec");
            let mut tally = Tally::default();
            check_page(&page(&ips, 0), &layout, &[spec], Range { start: 0x1000, end: 0x1040 }, &mut tally)
                .expect("all ours");
            proptest::prop_assert_eq!(tally.events(), ips.len() as u64);
        }
    }
}
