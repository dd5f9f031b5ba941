//! Line charts of training curves, drawn by `plotters`: one line per series, with axes, a grid
//! and a legend, as SVG (text kept as text) and as PNG (text drawn with the DejaVu Sans subset
//! in `assets/`, so a chart looks the same on a machine without fonts).

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Chart size in pixels.
const SIZE: (u32, u32) = (720, 405);
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans-Latin.ttf");

/// A series: its name and its `(x, y)` points; points that are not finite are left out.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// Makes the bundled font the one every chart's text is drawn with (once per process).
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is part of the binary; that it parses is checked by the tests.
        let _ = register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// The span of the finite values of `values`, widened when empty or a single value.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    match (lo.is_finite(), hi > lo) {
        (true, true) => {
            let pad = (hi - lo) * 0.04;
            (lo - pad, hi + pad)
        }
        (true, false) => (lo - 0.5, lo + 0.5),
        _ => (0.0, 1.0),
    }
}

/// An axis label: whole numbers without decimals (epochs), others with up to four.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 || v.abs() < 0.001 {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    }
}

fn finite(p: &&(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    series: &[Series<'_>],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let points = || series.iter().flat_map(|(_, p)| p.iter().filter(finite));
    let (x0, x1) = span(points().map(|p| p.0));
    let (y0, y1) = span(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|x| number(*x))
        .y_label_formatter(&|y| number(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()
        .map_err(err)?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                pts.iter().filter(finite).copied(),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// The chart of `series` against `x_label` under `title`, as an SVG document.
pub fn svg(title: &str, x_label: &str, series: &[Series<'_>]) -> Result<String, String> {
    register();
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, SIZE).into_drawing_area(),
        title,
        x_label,
        series,
    )?;
    Ok(out)
}

/// The chart of `series` against `x_label` under `title`, as a PNG image.
pub fn png(title: &str, x_label: &str, series: &[Series<'_>]) -> Result<Vec<u8>, String> {
    register();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        title,
        x_label,
        series,
    )?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curves() -> Vec<Series<'static>> {
        vec![
            (
                "train <loss>",
                vec![(1.0, 2.0), (2.0, 1.0), (3.0, f64::NAN)],
            ),
            ("valid", vec![(1.0, 1.5), (2.0, 1.4)]),
        ]
    }

    #[test]
    fn the_bundled_font_parses() {
        assert!(register_font("check", FontStyle::Normal, FONT_BYTES).is_ok());
    }

    #[test]
    fn svg_chart_has_one_line_per_series_a_legend_and_escaped_text() {
        let svg = svg("loss & more", "epoch", &curves()).unwrap();
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
        // One polyline per series, drawn in the series' colour.
        for c in &COLOURS[..2] {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            assert!(svg.matches(&hex).count() >= 2, "{hex} not in\n{svg}");
        }
        assert!(svg.contains("train &lt;loss&gt;") && svg.contains("valid"));
        assert!(svg.contains("loss &amp; more") && svg.contains("epoch"));
        // An empty chart still renders its frame.
        assert!(
            super::svg("empty", "x", &[])
                .unwrap()
                .trim_end()
                .ends_with("</svg>")
        );
    }

    #[test]
    fn png_chart_decodes_with_both_series_and_text() {
        let bytes = png("loss", "epoch", &curves()).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
        let count = |c: RGBColor| pixels.iter().filter(|p| **p == [c.0, c.1, c.2]).count();
        // Each series' line is a few hundred pixels of its colour; the text is dark pixels.
        assert!(count(COLOURS[0]) > 100, "train line: {}", count(COLOURS[0]));
        assert!(count(COLOURS[1]) > 100, "valid line: {}", count(COLOURS[1]));
        let dark = pixels.iter().filter(|p| p.iter().all(|&v| v < 80)).count();
        assert!(dark > 500, "text and axes: {dark} dark pixels");
        let white = count(WHITE);
        assert!(white > pixels.len() / 2, "background: {white}");
    }
}
