use photobulk_seeta::{create_detector_with_model, read_model, ImageData};
static MODEL: &[u8] = include_bytes!("../../imaging/model/seeta_fd_frontal_v1.0.bin");
fn read_pgm(p: &std::path::Path) -> (Vec<u8>, u32, u32) {
    let b = std::fs::read(p).unwrap();
    let s = String::from_utf8_lossy(&b[..20]).to_string();
    let mut it = s.split_whitespace();
    assert_eq!(it.next(), Some("P5"));
    let w: u32 = it.next().unwrap().parse().unwrap();
    let h: u32 = it.next().unwrap().parse().unwrap();
    let n = (w * h) as usize;
    (b[b.len() - n..].to_vec(), w, h)
}
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let variants: [(u32, f64, f32, u32); 4] = [(40, 2.0, 0.75, 6), (40, 2.0, 0.7, 6), (20, 0.5, 0.8, 4), (40, 0.1, 0.5, 3)];
    for (mf, th, sc, st) in variants {
        println!("# min_face {mf} thresh {th} scale {sc} step {st}");
        let mut d = create_detector_with_model(read_model(std::io::Cursor::new(MODEL)).unwrap());
        d.set_min_face_size(mf);
        d.set_score_thresh(th);
        d.set_pyramid_scale_factor(sc);
        d.set_slide_window_step(st, st);
        for f in &files {
            let (g, w, h) = read_pgm(f);
            let faces = d.detect(&ImageData::new(&g, w, h));
            println!("{} {}x{}: {}", f.file_name().unwrap().to_string_lossy(), w, h, faces.len());
            for fa in faces {
                let b = fa.bbox();
                println!("  {} {} {} {} {:?}", b.x(), b.y(), b.width(), b.height(), fa.score());
            }
        }
    }
}
