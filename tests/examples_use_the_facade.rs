//! A user copies an example into a project that depends on `shmkit` alone: every example
//! must compile with the facade as its only shmkit dependency, so none names a
//! `shmkit_*` crate directly (they are the facade's modules: `shmkit::ring`, ...).

#[test]
fn examples_name_no_shmkit_crate_but_the_facade() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut offenders = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).expect("readable example");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("shmkit_") {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(seen >= 10, "only {seen} examples found in {dir}");
    assert!(
        offenders.is_empty(),
        "examples that a shmkit-only project cannot compile (use shmkit::prelude::* or \
         shmkit::<module>):\n{}",
        offenders.join("\n")
    );
}
