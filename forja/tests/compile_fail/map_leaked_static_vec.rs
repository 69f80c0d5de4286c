// The bug this pins: a `&'static Vec` made after the workers were forked
// points at memory the workers do not have. Capturing it must not compile.
use forja::Pool;

fn main() {
    let pool = Pool::new(2).unwrap();
    let data: &'static Vec<u64> = Box::leak(Box::new((0..1000).collect()));
    let _ = pool.map(move |i: usize| data[i], 0..5usize);
}
