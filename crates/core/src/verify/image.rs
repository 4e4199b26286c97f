//! Template matching: find where a reference image (a logo, a menu tile, a button) appears in a
//! frame, scored like OpenCV's `matchTemplate` with `TM_CCOEFF_NORMED`.
//!
//! The score at a position is the Pearson correlation between the template and the frame window
//! under it (both mean-subtracted), in `[-1, 1]`: 1 is a perfect match up to brightness and
//! contrast, 0 is no relation. Two cases where that is undefined get a value instead of NaN:
//! a flat (single-colour) window scores 0 against a textured template (as in OpenCV); a flat
//! template scores 1 against flat windows and 0 elsewhere (OpenCV scores 1 everywhere, which
//! would make any flat reference image "match" any screen).
//!
//! # Algorithm
//! Large searches run in the frequency domain, as OpenCV does: the numerator (correlation with
//! the zero-mean template) for every position at once with a 2D real FFT of the search area, the
//! template's spectrum, a product and one inverse FFT (`realfft`/`rustfft`, `f32`); the window
//! means and energies come from exact integer sliding sums. The FFT is as large as the search area
//! (rounded up to a 5-smooth size): positions whose window would wrap around are never read, so no
//! padding to `area + template` is needed. `f32` rounding can move a score by ~1e-4 (more for
//! nearly flat windows), so the best candidates (within [`RESCORE_MARGIN`] of the best FFT score,
//! at most [`MAX_RESCORED`]) are re-scored exactly in integers and the best exact one wins:
//! the reported score is exact. Small searches (fewer than [`DIRECT_MAX_OPS`] multiply-adds) are
//! computed directly.
//!
//! Ties go to the first position in raster order (smallest `y`, then smallest `x`), like
//! OpenCV's `minMaxLoc`.

use std::sync::{Arc, Mutex};

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner, num_complex::Complex32};
use serde::{Deserialize, Serialize};

use super::{VerifyError, checked_area};
use crate::frame::{Gray, Rect};

/// Where a template matched best, in frame coordinates (top-left corner), and how well.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateMatch {
    pub x: u32,
    pub y: u32,
    /// `TM_CCOEFF_NORMED` score in `[-1, 1]`.
    pub score: f32,
}

impl TemplateMatch {
    /// The matched rectangle for a template of `width` x `height`.
    pub fn rect(&self, width: u32, height: u32) -> Rect {
        Rect::new(self.x, self.y, width, height)
    }
}

/// FFT scores within this distance of the best FFT score are re-scored exactly.
pub const RESCORE_MARGIN: f32 = 0.02;
/// At most this many candidates (the best by FFT score) are re-scored exactly.
pub const MAX_RESCORED: usize = 64;
/// Searches with fewer multiply-adds than this (positions x template pixels) skip the FFT.
pub const DIRECT_MAX_OPS: u64 = 4_000_000;

/// Finds the best match of `template` in `frame`, searching `region` (the whole frame when
/// `None`); the template must fit in the region.
pub fn find_template(
    frame: &Gray,
    template: &Gray,
    region: Option<Rect>,
) -> Result<TemplateMatch, VerifyError> {
    let (area, stats) = prepare(frame, template, region)?;
    let positions =
        u64::from(area.width - template.width + 1) * u64::from(area.height - template.height + 1);
    let best = if positions.saturating_mul(stats.n) <= DIRECT_MAX_OPS {
        find_direct(frame, template, area, &stats)
    } else {
        find_fft(frame, template, area, &stats)
    };
    Ok(best)
}

/// Like [`find_template`], but `None` unless the best score reaches `threshold`
/// (0.9 is a typical value for a reference image cut from a capture of the same device).
pub fn match_template(
    frame: &Gray,
    template: &Gray,
    region: Option<Rect>,
    threshold: f32,
) -> Result<Option<TemplateMatch>, VerifyError> {
    let best = find_template(frame, template, region)?;
    Ok((best.score >= threshold).then_some(best))
}

/// Integer statistics of the template.
struct TemplateStats {
    /// Number of pixels.
    n: u64,
    /// Sum of pixel values.
    sum: u64,
    /// `n * sum(t^2) - sum(t)^2` (n^2 times the variance), exact.
    var_n2: u128,
}

fn prepare(
    frame: &Gray,
    template: &Gray,
    region: Option<Rect>,
) -> Result<(Rect, TemplateStats), VerifyError> {
    let area = checked_area("frame", frame, region)?;
    checked_area("template", template, None)?;
    if template.width > area.width || template.height > area.height {
        return Err(VerifyError::TemplateTooLarge {
            template_width: template.width,
            template_height: template.height,
            area_width: area.width,
            area_height: area.height,
        });
    }
    let n = template.data.len() as u64;
    let sum: u64 = template.data.iter().map(|&v| u64::from(v)).sum();
    let sum_sq: u64 = template
        .data
        .iter()
        .map(|&v| u64::from(v) * u64::from(v))
        .sum();
    let var_n2 = u128::from(n) * u128::from(sum_sq) - u128::from(sum) * u128::from(sum);
    Ok((area, TemplateStats { n, sum, var_n2 }))
}

/// The exact score of the template at frame position `(x, y)` (top-left corner).
fn exact_score(frame: &Gray, template: &Gray, x: u32, y: u32, stats: &TemplateStats) -> f32 {
    let stride = frame.width as usize;
    let tw = template.width as usize;
    let (mut si, mut sii, mut sti) = (0u64, 0u64, 0u64);
    for (r, trow) in template.data.chunks_exact(tw).enumerate() {
        let start = (y as usize + r) * stride + x as usize;
        let frow = &frame.data[start..start + tw];
        let (mut s, mut ss, mut st) = (0u32, 0u32, 0u32);
        // Per-row sums fit in u32 for rows up to 66,000 pixels.
        for (&f, &t) in frow.iter().zip(trow) {
            let (f, t) = (u32::from(f), u32::from(t));
            s += f;
            ss += f * f;
            st += f * t;
        }
        si += u64::from(s);
        sii += u64::from(ss);
        sti += u64::from(st);
    }
    let n = i128::from(stats.n);
    let window_var_n2 = n * i128::from(sii) - i128::from(si) * i128::from(si);
    let num_n = n * i128::from(sti) - i128::from(stats.sum) * i128::from(si);
    score_from_parts(num_n as f64, stats.var_n2 as f64, window_var_n2 as f64)
}

/// `num / sqrt(var_t * var_w)` (all scaled by the same powers of n), with the flat cases defined
/// and the result clamped to `[-1, 1]`.
fn score_from_parts(num: f64, template_var: f64, window_var: f64) -> f32 {
    if template_var <= 0.0 {
        return if window_var <= 0.0 { 1.0 } else { 0.0 };
    }
    if window_var <= 0.0 {
        return 0.0;
    }
    (num / (template_var * window_var).sqrt()).clamp(-1.0, 1.0) as f32
}

/// Brute force: every position scored exactly. The reference for the fast path, and the fast
/// path itself for small searches.
fn find_direct(frame: &Gray, template: &Gray, area: Rect, stats: &TemplateStats) -> TemplateMatch {
    let mut best = TemplateMatch {
        x: area.x,
        y: area.y,
        score: f32::NEG_INFINITY,
    };
    for y in area.y..=area.y + area.height - template.height {
        for x in area.x..=area.x + area.width - template.width {
            let score = exact_score(frame, template, x, y, stats);
            if score > best.score {
                best = TemplateMatch { x, y, score };
            }
        }
    }
    best
}

/// The smallest `n >= min` whose only prime factors are 2, 3 and 5 (fast FFT sizes).
fn fft_size(min: usize) -> usize {
    let mut n = min.max(1);
    loop {
        let mut m = n;
        for p in [2, 3, 5] {
            while m.is_multiple_of(p) {
                m /= p;
            }
        }
        if m == 1 {
            return n;
        }
        n += 1;
    }
}

/// How many rows are transformed together before being scattered into column-major order
/// (keeps the transpose cache-friendly).
const ROW_BLOCK: usize = 16;

/// FFT plans for one search-area size.
struct Plans {
    /// FFT width (>= area width) and height (>= area height).
    nx: usize,
    ny: usize,
    /// Number of complex bins per row of a real FFT: `nx / 2 + 1`.
    nc: usize,
    row_forward: Arc<dyn RealToComplex<f32>>,
    row_inverse: Arc<dyn ComplexToReal<f32>>,
    col_forward: Arc<dyn Fft<f32>>,
    col_inverse: Arc<dyn Fft<f32>>,
}

/// Plans kept for the most recent search-area sizes: a check that matches again and again
/// (waiting for a screen) plans its four transforms (twiddle tables, scratch sizes) once.
const PLAN_CACHE: usize = 8;
static PLANS: Mutex<PlanCache> = Mutex::new(Vec::new());
/// `(search area width, height)` and its plans, most recently used last.
type PlanCache = Vec<((usize, usize), Arc<Plans>)>;

impl Plans {
    /// The plans for a `width` x `height` search area, from the cache or made (and cached).
    fn for_area(width: usize, height: usize) -> Arc<Plans> {
        let key = (width, height);
        let cached = |cache: &mut PlanCache| {
            let i = cache.iter().position(|(k, _)| *k == key)?;
            // Most recent last.
            let entry = cache.remove(i);
            let plans = entry.1.clone();
            cache.push(entry);
            Some(plans)
        };
        if let Some(p) = cached(&mut PLANS.lock().unwrap_or_else(|e| e.into_inner())) {
            return p;
        }
        // Planned outside the lock: another thread may plan the same size meanwhile (harmless).
        let plans = Arc::new(Plans::new(width, height));
        let mut cache = PLANS.lock().unwrap_or_else(|e| e.into_inner());
        if cached(&mut cache).is_none() {
            if cache.len() >= PLAN_CACHE {
                cache.remove(0);
            }
            cache.push((key, plans.clone()));
        }
        plans
    }

    fn new(width: usize, height: usize) -> Self {
        let nx = fft_size(width);
        let ny = fft_size(height);
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        Self {
            nx,
            ny,
            nc: nx / 2 + 1,
            row_forward: real.plan_fft_forward(nx),
            row_inverse: real.plan_fft_inverse(nx),
            col_forward: complex.plan_fft_forward(ny),
            col_inverse: complex.plan_fft_inverse(ny),
        }
    }

    /// The 2D spectrum (column-major: `nc` columns of `ny` bins) of `rows` (each at most `nx`
    /// values, zero-padded; missing rows are zero), each value mapped through `value`.
    fn forward<'a>(
        &self,
        rows: impl Iterator<Item = &'a [u8]>,
        value: impl Fn(u8) -> f32,
    ) -> Vec<Complex32> {
        let (nx, ny, nc) = (self.nx, self.ny, self.nc);
        let mut spec = vec![Complex32::new(0.0, 0.0); nc * ny];
        let mut input = vec![0.0f32; nx];
        let mut block = vec![Complex32::new(0.0, 0.0); ROW_BLOCK * nc];
        let mut scratch = self.row_forward.make_scratch_vec();
        let mut rows = rows.enumerate().peekable();
        while rows.peek().is_some() {
            let mut first = None;
            let mut count = 0;
            for (k, out) in block.chunks_exact_mut(nc).enumerate() {
                let Some((r, row)) = rows.next() else { break };
                first.get_or_insert(r);
                for (i, &v) in input.iter_mut().zip(row) {
                    *i = value(v);
                }
                input[row.len()..].fill(0.0);
                // Lengths always match the plan, so this cannot fail.
                let _ = self
                    .row_forward
                    .process_with_scratch(&mut input, out, &mut scratch);
                count = k + 1;
            }
            let r0 = first.unwrap_or(0);
            scatter_rows(&block[..count * nc], nc, &mut spec, ny, r0);
        }
        let mut scratch =
            vec![Complex32::new(0.0, 0.0); self.col_forward.get_inplace_scratch_len()];
        self.col_forward
            .process_with_scratch(&mut spec, &mut scratch);
        spec
    }
}

/// Columns per tile in the transposes: a tile of `ROW_BLOCK` rows by `TILE` columns stays in L1.
const TILE: usize = 8;

/// Writes `rows` (row-major, `nc` values per row) into rows `r0..` of the column-major `spec`
/// (`ny` values per column), tile by tile.
fn scatter_rows(rows: &[Complex32], nc: usize, spec: &mut [Complex32], ny: usize, r0: usize) {
    for c0 in (0..nc).step_by(TILE) {
        let c1 = (c0 + TILE).min(nc);
        for (k, row) in rows.chunks_exact(nc).enumerate() {
            for c in c0..c1 {
                spec[c * ny + r0 + k] = row[c];
            }
        }
    }
}

/// The inverse of [`scatter_rows`]: reads rows `r0..` of the column-major `spec` into `rows`.
fn gather_rows(spec: &[Complex32], ny: usize, r0: usize, rows: &mut [Complex32], nc: usize) {
    for c0 in (0..nc).step_by(TILE) {
        let c1 = (c0 + TILE).min(nc);
        for (k, row) in rows.chunks_exact_mut(nc).enumerate() {
            for c in c0..c1 {
                row[c] = spec[c * ny + r0 + k];
            }
        }
    }
}

/// The FFT path: see the module documentation.
fn find_fft(frame: &Gray, template: &Gray, area: Rect, stats: &TemplateStats) -> TemplateMatch {
    let (aw, ah) = (area.width as usize, area.height as usize);
    let (tw, th) = (template.width as usize, template.height as usize);
    let (ow, oh) = (aw - tw + 1, ah - th + 1);
    let plans = Plans::for_area(aw, ah);
    let (nx, ny, nc) = (plans.nx, plans.ny, plans.nc);

    // Shifting the frame by a constant does not change the correlation with a zero-mean
    // template; centring it keeps the f32 FFT's rounding error small.
    let rows = || super::region_rows(frame, area);
    let area_sum: u64 = rows()
        .map(|r| r.iter().map(|&v| u64::from(v)).sum::<u64>())
        .sum();
    let area_mean = area_sum as f32 / (aw * ah) as f32;
    let template_mean = stats.sum as f32 / stats.n as f32;

    let mut spec = plans.forward(rows(), |v| f32::from(v) - area_mean);
    let template_spec = plans.forward(template.data.chunks_exact(tw), |v| {
        f32::from(v) - template_mean
    });
    // Correlation: frame spectrum times the conjugate template spectrum.
    for (s, t) in spec.iter_mut().zip(&template_spec) {
        *s *= t.conj();
    }
    drop(template_spec);
    let mut scratch = vec![Complex32::new(0.0, 0.0); plans.col_inverse.get_inplace_scratch_len()];
    plans
        .col_inverse
        .process_with_scratch(&mut spec, &mut scratch);

    // Back to rows, one block at a time, turning correlations into scores as they come.
    let mut scorer = Scorer::new(frame, area, template, stats, (nx * ny) as f64);
    let mut block = vec![Complex32::new(0.0, 0.0); ROW_BLOCK * nc];
    let mut row_out = vec![0.0f32; nx];
    let mut row_scratch = plans.row_inverse.make_scratch_vec();
    let mut scores = vec![0.0f32; ow * oh];
    for r0 in (0..oh).step_by(ROW_BLOCK) {
        let count = ROW_BLOCK.min(oh - r0);
        gather_rows(&spec, ny, r0, &mut block[..count * nc], nc);
        for (k, row_spec) in block.chunks_exact_mut(nc).take(count).enumerate() {
            // The DC and Nyquist bins of a real signal's spectrum are real; rounding left a
            // tiny imaginary part that the inverse real FFT would reject.
            row_spec[0].im = 0.0;
            if nx.is_multiple_of(2) {
                row_spec[nc - 1].im = 0.0;
            }
            let _ =
                plans
                    .row_inverse
                    .process_with_scratch(row_spec, &mut row_out, &mut row_scratch);
            scorer.score_row(
                &row_out[..ow],
                &mut scores[(r0 + k) * ow..(r0 + k + 1) * ow],
            );
        }
    }
    drop(spec);
    pick_best(frame, template, area, stats, &scores, ow)
}

/// Turns FFT correlations into scores, one output row at a time, with exact integer window
/// sums maintained incrementally (vertical sums per column, then a horizontal sliding window).
struct Scorer<'a> {
    frame: &'a Gray,
    area: Rect,
    tw: usize,
    th: usize,
    n: u64,
    /// Sum and sum of squares of the `th` pixels above-and-including each column of the window.
    col_sum: Vec<u32>,
    col_sum_sq: Vec<u32>,
    /// Next output row.
    y: usize,
    /// `n / (nx * ny) / sqrt(template variance * n^2)`: undoes the unnormalised FFT round trip
    /// and divides by the template's part of the denominator (0 for a flat template).
    scale: f32,
    /// Whether the template is flat (every window scores 1 if flat too, else 0).
    flat_template: bool,
    /// Window variances (times n^2) of the current row: exact integers, then as f32.
    window_var: Vec<f32>,
    /// Prefix sums along the row of `col_sum` and `col_sum_sq` (`aw + 1` values, from 0) in
    /// f64, used when [`Scorer::exact_in_f64`].
    prefix: Vec<f64>,
    prefix_sq: Vec<f64>,
    /// Whether every window sum, `n * sum(w^2)` and `sum(w)^2` are integers below 2^53, so that
    /// the variances computed in f64 are exact (templates up to ~372,000 pixels).
    exact_in_f64: bool,
}

impl<'a> Scorer<'a> {
    fn new(
        frame: &'a Gray,
        area: Rect,
        template: &Gray,
        stats: &TemplateStats,
        fft_len: f64,
    ) -> Self {
        let (tw, th) = (template.width as usize, template.height as usize);
        let aw = area.width as usize;
        let mut col_sum = vec![0u32; aw];
        let mut col_sum_sq = vec![0u32; aw];
        for row in super::region_rows(frame, area).take(th) {
            add_row(&mut col_sum, &mut col_sum_sq, row);
        }
        Self {
            frame,
            area,
            tw,
            th,
            n: stats.n,
            col_sum,
            col_sum_sq,
            y: 0,
            scale: if stats.var_n2 == 0 {
                0.0
            } else {
                (stats.n as f64 / fft_len / (stats.var_n2 as f64).sqrt()) as f32
            },
            flat_template: stats.var_n2 == 0,
            window_var: vec![0.0; aw - tw + 1],
            prefix: vec![0.0; aw + 1],
            prefix_sq: vec![0.0; aw + 1],
            // n * n * 255^2 < 2^53 bounds both n * sum(w^2) and sum(w)^2.
            exact_in_f64: u128::from(stats.n) * u128::from(stats.n) * 65_025 < (1u128 << 53),
        }
    }

    /// Scores the next output row from its correlations.
    fn score_row(&mut self, corr: &[f32], out: &mut [f32]) {
        if self.y > 0 {
            let stride = self.frame.width as usize;
            let x0 = self.area.x as usize;
            let aw = self.area.width as usize;
            let old = (self.area.y as usize + self.y - 1) * stride + x0;
            let new = (self.area.y as usize + self.y - 1 + self.th) * stride + x0;
            let (old, new) = (
                &self.frame.data[old..old + aw],
                &self.frame.data[new..new + aw],
            );
            for (((s, ss), &o), &n) in self
                .col_sum
                .iter_mut()
                .zip(&mut self.col_sum_sq)
                .zip(old)
                .zip(new)
            {
                let (o, n) = (u32::from(o), u32::from(n));
                *s = *s + n - o;
                *ss = *ss + n * n - o * o;
            }
        }
        self.y += 1;

        if self.exact_in_f64 {
            self.window_vars_f64();
        } else {
            self.window_vars_u128();
        }
        if self.flat_template {
            for (o, &wv) in out.iter_mut().zip(&self.window_var) {
                *o = if wv > 0.0 { 0.0 } else { 1.0 };
            }
            return;
        }
        // Branch-free so that it vectorises; flat windows (variance 0) score 0.
        let scale = self.scale;
        for ((o, &c), &wv) in out.iter_mut().zip(corr).zip(&self.window_var) {
            let s = (c * scale / wv.sqrt()).clamp(-1.0, 1.0);
            *o = if wv > 0.0 { s } else { 0.0 };
        }
    }
}

impl Scorer<'_> {
    /// The row's window variances (times n^2) from prefix sums in f64: each window sum is a
    /// difference of two prefix sums, so the loop over positions has no carried dependency and
    /// vectorises (the sliding `+ new - old` form did not). Exact: see `exact_in_f64`.
    fn window_vars_f64(&mut self) {
        // Signed: i64 to f64 is one instruction, u64 to f64 several.
        let (mut a, mut b) = (0i64, 0i64);
        for ((p, q), (&s, &ss)) in self.prefix[1..]
            .iter_mut()
            .zip(&mut self.prefix_sq[1..])
            .zip(self.col_sum.iter().zip(&self.col_sum_sq))
        {
            a += i64::from(s);
            b += i64::from(ss);
            *p = a as f64;
            *q = b as f64;
        }
        let n = self.n as f64;
        let ow = self.window_var.len();
        let tw = self.tw;
        let (p0, p1) = (&self.prefix[..ow], &self.prefix[tw..tw + ow]);
        let (q0, q1) = (&self.prefix_sq[..ow], &self.prefix_sq[tw..tw + ow]);
        for ((wv, (&p0, &p1)), (&q0, &q1)) in self
            .window_var
            .iter_mut()
            .zip(p0.iter().zip(p1))
            .zip(q0.iter().zip(q1))
        {
            let (si, sii) = (p1 - p0, q1 - q0);
            *wv = (n * sii - si * si) as f32;
        }
    }

    /// The same in 128-bit integers with a sliding window, for templates too large for f64.
    fn window_vars_u128(&mut self) {
        let tw = self.tw;
        let n = u128::from(self.n);
        let mut si: u64 = self.col_sum[..tw].iter().map(|&v| u64::from(v)).sum();
        let mut sii: u64 = self.col_sum_sq[..tw].iter().map(|&v| u64::from(v)).sum();
        for x in 0..self.window_var.len() {
            if x > 0 {
                si = si + u64::from(self.col_sum[x + tw - 1]) - u64::from(self.col_sum[x - 1]);
                sii = sii + u64::from(self.col_sum_sq[x + tw - 1])
                    - u64::from(self.col_sum_sq[x - 1]);
            }
            self.window_var[x] = (n * u128::from(sii) - u128::from(si) * u128::from(si)) as f32;
        }
    }
}

/// The largest of `v` (NaN-free input; -inf when empty), in eight lanes so that it vectorises.
fn max_of(v: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
        }
    }
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

fn add_row(col_sum: &mut [u32], col_sum_sq: &mut [u32], row: &[u8]) {
    for ((s, ss), &v) in col_sum.iter_mut().zip(col_sum_sq.iter_mut()).zip(row) {
        let v = u32::from(v);
        *s += v;
        *ss += v * v;
    }
}

/// Re-scores the best FFT candidates exactly and returns the best exact one.
fn pick_best(
    frame: &Gray,
    template: &Gray,
    area: Rect,
    stats: &TemplateStats,
    scores: &[f32],
    ow: usize,
) -> TemplateMatch {
    // Scores are NaN-free: clamped, or 0/1 for flat windows.
    const CHUNK: usize = 256;
    let maxima: Vec<f32> = scores.chunks(CHUNK).map(max_of).collect();
    let max = max_of(&maxima);
    let floor = max - RESCORE_MARGIN;
    let mut candidates: Vec<(f32, usize)> = Vec::new();
    for (k, (chunk, &m)) in scores.chunks(CHUNK).zip(&maxima).enumerate() {
        if m >= floor {
            candidates.extend(
                chunk
                    .iter()
                    .enumerate()
                    .filter(|&(_, &s)| s >= floor)
                    .map(|(i, &s)| (s, k * CHUNK + i)),
            );
        }
    }
    if candidates.len() > MAX_RESCORED {
        candidates.select_nth_unstable_by(MAX_RESCORED - 1, |a, b| {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        });
        candidates.truncate(MAX_RESCORED);
    }
    candidates.sort_unstable_by_key(|&(_, i)| i);
    let mut best = TemplateMatch {
        x: area.x,
        y: area.y,
        score: f32::NEG_INFINITY,
    };
    for (_, i) in candidates {
        let (x, y) = (area.x + (i % ow) as u32, area.y + (i / ow) as u32);
        let score = exact_score(frame, template, x, y, stats);
        if score > best.score {
            best = TemplateMatch { x, y, score };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    fn random_gray(rng: &mut StdRng, width: u32, height: u32) -> Gray {
        let data = (0..width * height).map(|_| rng.random()).collect();
        Gray::new(width, height, data).expect("gray")
    }

    /// A smooth-ish random image: random noise blurred by a box filter, so that neighbouring
    /// positions have similar scores (harder for the argmax than white noise).
    fn blurred_gray(rng: &mut StdRng, width: u32, height: u32) -> Gray {
        let noise = random_gray(rng, width + 4, height + 4);
        let mut data = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                let mut s = 0u32;
                for dy in 0..5 {
                    for dx in 0..5 {
                        s += u32::from(noise.data[((y + dy) * (width + 4) + x + dx) as usize]);
                    }
                }
                data.push((s / 25) as u8);
            }
        }
        Gray::new(width, height, data).expect("gray")
    }

    fn direct(frame: &Gray, template: &Gray, region: Option<Rect>) -> TemplateMatch {
        let (area, stats) = prepare(frame, template, region).expect("valid");
        find_direct(frame, template, area, &stats)
    }

    fn fft(frame: &Gray, template: &Gray, region: Option<Rect>) -> TemplateMatch {
        let (area, stats) = prepare(frame, template, region).expect("valid");
        find_fft(frame, template, area, &stats)
    }

    /// Textbook mean-subtracted NCC in f64, independent of the integer formulation.
    fn textbook_score(frame: &Gray, template: &Gray, x: u32, y: u32) -> f64 {
        let n = f64::from(template.width * template.height);
        let w = frame.crop(Rect::new(x, y, template.width, template.height));
        let mt = template.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let mw = w.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let (mut num, mut dt, mut dw) = (0.0, 0.0, 0.0);
        for (&t, &v) in template.data.iter().zip(&w.data) {
            let (t, v) = (f64::from(t) - mt, f64::from(v) - mw);
            num += t * v;
            dt += t * t;
            dw += v * v;
        }
        num / (dt * dw).sqrt()
    }

    #[test]
    fn integer_score_matches_the_textbook_formula() {
        let mut rng = StdRng::seed_from_u64(1);
        let frame = random_gray(&mut rng, 40, 30);
        let template = random_gray(&mut rng, 7, 5);
        let (_, stats) = prepare(&frame, &template, None).expect("valid");
        for (x, y) in [(0, 0), (3, 4), (33, 25)] {
            let exact = exact_score(&frame, &template, x, y, &stats);
            assert!((f64::from(exact) - textbook_score(&frame, &template, x, y)).abs() < 1e-6);
        }
    }

    #[test]
    fn a_template_too_large_for_f64_sums_scores_exactly_too() {
        // 620x605 = 375,100 pixels: the window variances take the 128-bit integer path.
        let mut rng = StdRng::seed_from_u64(11);
        let frame = blurred_gray(&mut rng, 624, 608);
        let template = frame.crop(Rect::new(3, 2, 620, 605));
        let (area, stats) = prepare(&frame, &template, None).expect("valid");
        let positions = u64::from(area.width - template.width + 1)
            * u64::from(area.height - template.height + 1);
        assert!(positions * stats.n > DIRECT_MAX_OPS, "takes the FFT path");
        let scorer = Scorer::new(&frame, area, &template, &stats, 1.0);
        assert!(!scorer.exact_in_f64);
        let found = fft(&frame, &template, None);
        assert_eq!(found, direct(&frame, &template, None));
        assert_eq!((found.x, found.y), (3, 2));
    }

    #[test]
    fn fft_path_agrees_with_brute_force_on_random_images() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..24 {
            let (w, h) = (rng.random_range(20..90), rng.random_range(15..70));
            let frame = if case % 2 == 0 {
                random_gray(&mut rng, w, h)
            } else {
                blurred_gray(&mut rng, w, h)
            };
            let (tw, th) = (
                rng.random_range(1..=w.min(24)),
                rng.random_range(1..=h.min(18)),
            );
            // Half of the templates are cut from the frame, half are unrelated.
            let template = if case % 4 < 2 {
                let (x, y) = (rng.random_range(0..=w - tw), rng.random_range(0..=h - th));
                frame.crop(Rect::new(x, y, tw, th))
            } else {
                random_gray(&mut rng, tw, th)
            };
            let region = (case % 3 == 0)
                .then(|| Rect::new(2, 1, w - 3, h - 2))
                .filter(|r| r.width >= tw && r.height >= th);
            let expected = direct(&frame, &template, region);
            let got = fft(&frame, &template, region);
            assert!(
                (got.score - expected.score).abs() < 1e-3,
                "case {case}: {got:?} vs {expected:?}"
            );
            assert_eq!(
                (got.x, got.y),
                (expected.x, expected.y),
                "case {case}: {got:?} vs {expected:?}"
            );
            // The whole score map, not just the best: compare a few positions.
            let (area, stats) = prepare(&frame, &template, region).expect("valid");
            let pos = (
                area.x + (area.width - tw) / 2,
                area.y + (area.height - th) / 2,
            );
            let exact = exact_score(&frame, &template, pos.0, pos.1, &stats);
            assert!(
                (f64::from(exact) - textbook_score(&frame, &template, pos.0, pos.1)).abs() < 1e-4
            );
        }
    }

    #[test]
    fn fft_score_map_agrees_with_exact_scores() {
        let mut rng = StdRng::seed_from_u64(3);
        let frame = blurred_gray(&mut rng, 64, 48);
        let template = random_gray(&mut rng, 9, 6);
        let (area, stats) = prepare(&frame, &template, None).expect("valid");
        let plans_scores = {
            let (ow, oh) = (64 - 9 + 1, 48 - 6 + 1);
            let plans = Plans::new(64, 48);
            let mean = stats.sum as f32 / stats.n as f32;
            let mut spec = plans.forward(super::super::region_rows(&frame, area), f32::from);
            let ts = plans.forward(template.data.chunks_exact(9), |v| f32::from(v) - mean);
            for (s, t) in spec.iter_mut().zip(&ts) {
                *s *= t.conj();
            }
            let mut scratch =
                vec![Complex32::new(0.0, 0.0); plans.col_inverse.get_inplace_scratch_len()];
            plans
                .col_inverse
                .process_with_scratch(&mut spec, &mut scratch);
            let mut scorer = Scorer::new(
                &frame,
                area,
                &template,
                &stats,
                (plans.nx * plans.ny) as f64,
            );
            let mut out = vec![0.0; ow * oh];
            let mut row = vec![Complex32::new(0.0, 0.0); plans.nc];
            let mut real = vec![0.0; plans.nx];
            for y in 0..oh {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = spec[c * plans.ny + y];
                }
                row[0].im = 0.0;
                row[plans.nc - 1].im = 0.0;
                plans
                    .row_inverse
                    .process(&mut row, &mut real)
                    .expect("inverse");
                scorer.score_row(&real[..ow], &mut out[y * ow..(y + 1) * ow]);
            }
            out
        };
        for (i, &s) in plans_scores.iter().enumerate() {
            let (x, y) = ((i % 56) as u32, (i / 56) as u32);
            let exact = exact_score(&frame, &template, x, y, &stats);
            assert!((s - exact).abs() < 1e-3, "({x}, {y}): {s} vs {exact}");
        }
    }

    #[test]
    fn finds_a_cut_template_in_a_large_frame() {
        let mut rng = StdRng::seed_from_u64(11);
        let frame = blurred_gray(&mut rng, 640, 360);
        let template = frame.crop(Rect::new(301, 177, 80, 48));
        let m = find_template(&frame, &template, None).expect("match");
        assert_eq!((m.x, m.y), (301, 177));
        assert!(m.score > 0.99, "{m:?}");
        assert_eq!(m.rect(80, 48), Rect::new(301, 177, 80, 48));
        // Brightness and contrast changes do not matter.
        let brighter =
            Gray::new(80, 48, template.data.iter().map(|&v| v / 2 + 60).collect()).expect("gray");
        let m = find_template(&frame, &brighter, None).expect("match");
        assert_eq!((m.x, m.y), (301, 177));
        assert!(m.score > 0.99, "{m:?}");
        // Searching a region that contains it finds it; one that does not, does not.
        let m = match_template(&frame, &template, Some(Rect::new(250, 150, 200, 120)), 0.9)
            .expect("ok");
        assert_eq!(m.map(|m| (m.x, m.y)), Some((301, 177)));
        let m =
            match_template(&frame, &template, Some(Rect::new(0, 0, 300, 360)), 0.9).expect("ok");
        assert_eq!(m, None);
    }

    #[test]
    fn an_absent_template_scores_low() {
        let mut rng = StdRng::seed_from_u64(12);
        let frame = blurred_gray(&mut rng, 320, 240);
        let other = blurred_gray(&mut rng, 320, 240).crop(Rect::new(10, 10, 60, 40));
        let m = find_template(&frame, &other, None).expect("match");
        assert!(m.score < 0.6, "{m:?}");
        assert_eq!(match_template(&frame, &other, None, 0.9).expect("ok"), None);
    }

    #[test]
    fn flat_templates_and_windows_do_not_produce_nan() {
        let mut data = vec![40u8; 100 * 80];
        for y in 30..50 {
            for x in 20..60 {
                data[y * 100 + x] = ((x * x * 31 + y * y * 17 + x * y * 7) % 251) as u8;
            }
        }
        let frame = Gray::new(100, 80, data).expect("gray");
        // A textured template against a mostly flat frame: flat windows score 0.
        let textured = frame.crop(Rect::new(25, 32, 10, 8));
        let m = find_template(&frame, &textured, None).expect("match");
        assert_eq!((m.x, m.y), (25, 32));
        assert!(m.score > 0.99);
        // A flat template matches a flat window (any brightness) with 1 and nothing else.
        let flat = Gray::new(10, 8, vec![200; 80]).expect("gray");
        let m = find_template(&frame, &flat, None).expect("match");
        assert_eq!((m.x, m.y, m.score), (0, 0, 1.0));
        let m = find_template(&frame, &flat, Some(Rect::new(20, 30, 40, 20))).expect("match");
        assert_eq!(m.score, 0.0);
        let fm = fft(&frame, &flat, None);
        assert_eq!((fm.x, fm.y, fm.score), (0, 0, 1.0));
        let all_flat = Gray::new(100, 80, vec![9; 8000]).expect("gray");
        assert_eq!(fft(&all_flat, &textured, None).score, 0.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let frame = Gray::new(50, 40, vec![0; 2000]).expect("gray");
        let template = Gray::new(20, 20, vec![0; 400]).expect("gray");
        let e =
            find_template(&frame, &template, Some(Rect::new(0, 0, 30, 10))).expect_err("too large");
        assert_eq!(
            e.to_string(),
            "template 20x20 is larger than the 30x10 search area"
        );
        let e =
            find_template(&frame, &template, Some(Rect::new(40, 0, 30, 30))).expect_err("outside");
        assert_eq!(e.code(), "region_outside_frame");
        let empty = Gray {
            width: 0,
            height: 0,
            data: vec![],
        };
        assert_eq!(
            find_template(&frame, &empty, None),
            Err(VerifyError::Empty("template"))
        );
    }

    #[test]
    fn fft_sizes_are_5_smooth() {
        assert_eq!(fft_size(1920), 1920);
        assert_eq!(fft_size(1080), 1080);
        assert_eq!(fft_size(7), 8);
        assert_eq!(fft_size(1021), 1024);
        assert_eq!(fft_size(1), 1);
    }
}
