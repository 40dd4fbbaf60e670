//! Which result rows a batch's touched groups emit, and with which kind.

use sluice_common::changelog::RowKind;

/// Output rows of one batch: for each touched group, which of its old and
/// new result rows to emit and how.
pub(super) struct Changes {
    /// (touched index, 0 = old / 1 = new, index in old/new, kind).
    pub rows: Vec<(usize, usize, usize, RowKind)>,
}

impl Changes {
    pub fn plan(
        old: &[Option<usize>],
        new: &[Option<usize>],
        same: &dyn Fn(usize, usize) -> bool,
    ) -> Self {
        let mut rows = Vec::with_capacity(old.len());
        for (j, (o, n)) in old.iter().zip(new).enumerate() {
            match (*o, *n) {
                (Some(o), Some(n)) if !same(o, n) => {
                    rows.push((j, 0, o, RowKind::UpdateBefore));
                    rows.push((j, 1, n, RowKind::UpdateAfter));
                }
                (Some(_), Some(_)) | (None, None) => {}
                (Some(o), None) => rows.push((j, 0, o, RowKind::Delete)),
                (None, Some(n)) => rows.push((j, 1, n, RowKind::Insert)),
            }
        }
        Changes { rows }
    }
}

/// Positions of the present entries: `Some(k)` for the k-th present one.
pub(super) fn positions(present: &[bool]) -> Vec<Option<usize>> {
    let mut k = 0;
    present
        .iter()
        .map(|&p| {
            p.then(|| {
                k += 1;
                k - 1
            })
        })
        .collect()
}
