//! Where the validator is in the resource: a stack of borrowed path segments, turned into a
//! FHIRPath expression (`Patient.name[0].given[1]`) only when an issue needs one, so that walking
//! a valid resource allocates nothing for paths.

use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

#[derive(Debug, Default)]
pub(super) struct PathStack<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> PathStack<'a> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        PathStack {
            segments: Vec::with_capacity(capacity),
        }
    }

    pub(super) fn push_name(&mut self, name: &'a str) {
        self.segments.push(Segment::Name(name));
    }

    pub(super) fn push_index(&mut self, index: usize) {
        self.segments.push(Segment::Index(index));
    }

    pub(super) fn pop(&mut self) {
        self.segments.pop();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The expression for the current position, with `extra` appended as a child when given.
    pub(super) fn render(&self, extra: Option<&str>) -> String {
        let mut out = String::with_capacity(64);
        let names = self
            .segments
            .iter()
            .copied()
            .chain(extra.map(Segment::Name));
        for segment in names {
            match segment {
                Segment::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        out
    }
}
