fn main() { println!("{}", hotspots::probe()); }
