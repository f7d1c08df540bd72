//! The run's requests as a pure function of their number: which template, which ids.
//!
//! Request `k` is made from template `k mod templates` (the last request of a `--count` run that
//! is not a whole number of batches from a template of the remaining size), its span `n` gets
//! span number `k × batch_size + n` and its trace `t` trace number `k × batch_size + t` (a request
//! never holds more traces than spans). Sending needs nothing else, and neither does `--verify`.

use crate::ids::{mix, IdScheme};
use crate::profile::Profile;
use crate::template::{RequestIds, Template, TemplateError};
use crate::wire::Wire;

/// All requests of a run.
#[derive(Debug)]
pub struct Plan {
    templates: Vec<Template>,
    remainder: Option<Template>,
    batch_size: u32,
    total_requests: Option<u64>,
    ids: IdScheme,
    wire: Wire,
}

impl Plan {
    /// Builds `template_count` templates of `batch_size` spans (and one of `total_spans mod
    /// batch_size` spans for the last request when that is not zero), for `wire`. `total_spans` is
    /// `None` for runs bounded by time.
    ///
    /// # Errors
    /// Only on a generator bug ([`TemplateError`]).
    pub fn new(
        profile: &Profile,
        seed: u64,
        batch_size: u32,
        template_count: u32,
        total_spans: Option<u64>,
        wire: Wire,
    ) -> Result<Self, TemplateError> {
        let templates = (0..u64::from(template_count))
            .map(|index| Template::build(profile, mix(seed.wrapping_add(index)), batch_size, wire))
            .collect::<Result<Vec<_>, _>>()?;
        let remainder = match total_spans.map(|total| total % u64::from(batch_size)) {
            Some(rest) if rest > 0 => Some(Template::build(profile, mix(!seed), rest as u32, wire)?),
            _ => None,
        };
        let total_requests = total_spans.map(|total| total.div_ceil(u64::from(batch_size)));
        Ok(Self { templates, remainder, batch_size, total_requests, ids: IdScheme::new(seed), wire })
    }

    /// The template request `request` is made from.
    #[must_use]
    pub fn template_for(&self, request: u64) -> &Template {
        match (&self.remainder, self.total_requests) {
            (Some(remainder), Some(total)) if request + 1 == total => remainder,
            _ => &self.templates[(request % self.templates.len() as u64) as usize],
        }
    }

    /// How far apart the span numbers of consecutive requests are (the batch size).
    #[must_use]
    pub fn span_stride(&self) -> u64 {
        u64::from(self.batch_size)
    }

    /// Requests in a `--count` run; `None` when the run is bounded by time.
    #[must_use]
    pub fn total_requests(&self) -> Option<u64> {
        self.total_requests
    }

    /// How the requests go on the wire.
    #[must_use]
    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// The run's ids.
    #[must_use]
    pub fn ids(&self) -> &IdScheme {
        &self.ids
    }

    /// Writes request `request`'s body, timed at `time_nanos`, into `out`; returns its span count.
    ///
    /// # Errors
    /// [`TemplateError::TimeOutOfRange`] for a clock outside 2001..2286.
    pub fn render(&self, request: u64, time_nanos: u64, out: &mut Vec<u8>) -> Result<usize, TemplateError> {
        let template = self.template_for(request);
        let base = request * self.span_stride();
        template.render(&self.ids, RequestIds { span_base: base, trace_base: base, time_nanos }, out)?;
        Ok(template.span_count())
    }
}
