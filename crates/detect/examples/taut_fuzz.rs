use std::io::BufRead;
fn main() {
    let pat = std::fs::read_to_string("/tmp/det-bench/pat.txt").unwrap();
    let t = palisade_detect::seclang::tautology::Tautology::recognize(pat.trim()).unwrap();
    let f = std::fs::File::open("/tmp/det-bench/fuzz.txt").unwrap();
    for (i, l) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let l = l.unwrap();
        if t.find(&l).is_some() { println!("{}", i + 1); }
    }
}
