fn main() {
    let f = std::fs::File::open("/tmp/idx100k.bin").unwrap();
    let idx = ruvector_index::Hnsw::read_from(std::io::BufReader::new(f)).unwrap();
    let q = ruvector_dataset::read_fvecs(std::path::Path::new("/work/shared/data/pypi-minilm-100k/query.fvecs"), None)
        .unwrap();
    let mut h: u64 = 0;
    let mut hs = Vec::new();
    for (i, v) in q.iter().enumerate() {
        let r = idx.search_with_ef(v, 10, 32).unwrap();
        for n in &r {
            h = h.wrapping_mul(31).wrapping_add(n.id);
        }
        if i < 3 {
            hs.push(format!("{:?}", r.iter().map(|n| n.id).collect::<Vec<_>>()));
        }
    }
    println!("{h} {} max_level={}", hs.join(" "), idx.max_level());
}
