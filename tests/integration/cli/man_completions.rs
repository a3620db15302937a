//! `swantrail man` and `swantrail completions`: the pages and scripts the
//! packages ship are generated from the program itself, so every subcommand
//! and every key of the documented example config is in them.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
const SUBCOMMANDS: [&str; 10] = [
    "run",
    "parse",
    "show",
    "diff",
    "replay",
    "report",
    "redeliver",
    "check-config",
    "completions",
    "man",
];

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "swantrail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_out_dir_writes_one_page_per_subcommand_and_the_config_page() {
    let dir = tempfile::tempdir().unwrap();
    stdout_of(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.path().join("swantrail.1")).unwrap();
    assert!(
        main.starts_with(".ie") || main.contains(".TH swantrail 1"),
        "{main}"
    );
    for sub in SUBCOMMANDS {
        let page = dir.path().join(format!("swantrail-{sub}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(&format!(".TH swantrail-{sub} 1")), "{text}");
        let listed = format!("swantrail\\-{}(1)", sub.replace('-', "\\-"));
        assert!(main.contains(&listed), "swantrail(1) lists {sub}");
    }
    let config = std::fs::read_to_string(dir.path().join("swantrail.toml.5")).unwrap();
    assert!(config.starts_with(".TH swantrail.toml 5"), "{config}");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/swantrail.toml"
    ))
    .unwrap();
    // Every line of the documented example, as roff shows it verbatim.
    for line in example.lines() {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        assert!(
            config.contains(&escaped),
            "swantrail.toml(5) lacks {line:?}"
        );
    }
    assert_eq!(stdout_of(&["man", "swantrail.toml"]), config);
}

#[test]
fn man_refuses_a_page_that_does_not_exist_and_names_the_ones_that_do() {
    let out = Command::new(BIN)
        .args(["man", "swantrail-nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no manual page \"swantrail-nope\""),
        "{stderr}"
    );
    assert!(stdout_of(&["man", "swantrail-run"]).contains(".TH swantrail-run 1"));
}

#[test]
fn completions_know_every_subcommand_in_bash_zsh_and_fish() {
    let bash = stdout_of(&["completions", "bash"]);
    let zsh = stdout_of(&["completions", "zsh"]);
    let fish = stdout_of(&["completions", "fish"]);
    assert!(bash.contains("complete -F _swantrail"), "{bash}");
    assert!(zsh.starts_with("#compdef swantrail"), "{zsh}");
    assert!(fish.contains("complete -c swantrail"), "{fish}");
    for sub in SUBCOMMANDS {
        for (shell, script) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    assert!(bash.contains("--config") && fish.contains("-l config"));
}
