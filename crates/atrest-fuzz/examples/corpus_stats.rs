//! Tallies how the inputs of a decrypt corpus end, per provider: shows how deep the fuzzer got.
//!
//! ```sh
//! cargo run -p atrest-fuzz --example corpus_stats -- stream_native fuzz/corpus/stream_native
//! ```

use std::collections::BTreeMap;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: corpus_stats <stream_native|stream_tink> <corpus dir>");
        std::process::exit(2);
    };
    let mut real = BTreeMap::<String, usize>::new();
    let mut insecure = BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(&dir)? {
        let data = std::fs::read(entry?.path())?;
        let summary = match target.as_str() {
            "stream_native" => atrest_fuzz::stream_decrypt_native(&data),
            "stream_tink" => atrest_fuzz::stream_decrypt_tink(&data),
            _ => {
                eprintln!("unknown decrypt target {target}");
                std::process::exit(2);
            }
        };
        *real.entry(summary.real).or_default() += 1;
        *insecure.entry(summary.insecure).or_default() += 1;
    }
    println!("{target} corpus {dir}");
    println!("  real provider ({} outcomes):     {real:?}", real.len());
    println!(
        "  insecure provider ({} outcomes): {insecure:?}",
        insecure.len()
    );
    Ok(())
}
