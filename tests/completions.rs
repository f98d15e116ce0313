//! `tiburoncin completions` and `tiburoncin man`: what they print is read by the real
//! shells and by man(1).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Runs `tiburoncin args`, expecting success, and saves what it printed in a file.
fn generated(args: &[&str], name: &str) -> PathBuf {
    let (code, stdout, stderr) = run(args);
    assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
    assert!(!stdout.is_empty(), "{args:?} printed nothing");
    let path = scratch_dir(name).join(name);
    std::fs::write(&path, stdout).unwrap();
    path
}

fn run_tool(program: &str, args: &[&str], path: &Path) -> Output {
    Command::new(program)
        .args(args)
        .arg(path)
        .env("MANWIDTH", "80")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_bash_script_parses_and_completes_the_long_options() {
    let script = generated(&["completions", "bash"], "tiburoncin.bash");
    assert_ok(&run_tool("bash", &["-n"], &script), "bash -n");
    // Loaded into a real bash, the completion function offers the option that
    // `--keep` starts, and the subcommands.
    let complete = format!(
        "source {}; COMP_WORDS=(tiburoncin --keep); COMP_CWORD=1; \
         _tiburoncin tiburoncin --keep tiburoncin; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(tiburoncin co); COMP_CWORD=1; \
         _tiburoncin tiburoncin co tiburoncin; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let output = Command::new("bash")
        .args(["-c", &complete])
        .output()
        .unwrap();
    assert_ok(&output, "bash completing");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "--keep-listening\ncompletions\n"
    );
}

#[test]
fn the_zsh_script_parses() {
    if !have_program("zsh", "--version", "zsh") {
        return;
    }
    let script = generated(&["completions", "zsh"], "_tiburoncin");
    assert_ok(&run_tool("zsh", &["-n"], &script), "zsh -n");
}

#[test]
fn the_fish_script_parses() {
    if !have_program("fish", "--version", "fish") {
        return;
    }
    let script = generated(&["completions", "fish"], "tiburoncin.fish");
    assert_ok(&run_tool("fish", &["--no-execute"], &script), "fish -n");
    // Loaded into a real fish, it completes the long option.
    let output = Command::new("fish")
        .args([
            "-c",
            &format!(
                "source {}; complete -C 'tiburoncin --keep'",
                script.display()
            ),
        ])
        .output()
        .unwrap();
    assert_ok(&output, "fish completing");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("--keep-listening"), "{text}");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let (code, stdout, stderr) = run(&["completions", "tcsh"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.starts_with(
            "error: invalid value 'tcsh' for '<SHELL>' [possible values: bash, zsh, fish]\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Usage: tiburoncin completions <SHELL>"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["completions"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["man", "extra"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Usage: tiburoncin man"), "{stderr}");
}

#[test]
fn the_man_page_renders_with_its_name_and_options() {
    if !have_program("man", "--version", "man-db") {
        return;
    }
    let page = generated(&["man"], "tiburoncin.1");
    let output = run_tool("man", &["-l"], &page);
    assert_ok(&output, "man -l");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "man's warnings"
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("tiburoncin(1)"), "{text}");
    let name = lines.iter().position(|l| *l == "NAME").expect("NAME");
    let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(lines[name + 1]).starts_with("tiburoncin - A TCP man in the middle"),
        "{text}"
    );
    for option in [
        "-A <addr>",
        "-k, --keep-listening",
        "--max-dump <N>",
        "-q, --quiet",
    ] {
        assert!(
            lines.iter().any(|l| l.trim() == option),
            "no {option:?} in:\n{text}"
        );
    }
    for subcommand in ["replay", "demo", "completions", "man"] {
        assert!(
            text.contains(&format!("tiburoncin-{subcommand}(1)")),
            "{subcommand}"
        );
    }
    for line in &lines {
        assert!(line.chars().count() <= 80, "{line}");
    }
    // The pages the main one points to are there too.
    for subcommand in ["replay", "demo", "completions", "man"] {
        let name = format!("tiburoncin-{subcommand}.1");
        let page = generated(&["man", subcommand], &name);
        let output = run_tool("man", &["-l"], &page);
        assert_ok(&output, &name);
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.starts_with(&format!("tiburoncin-{subcommand}(1)")),
            "{text}"
        );
    }
    let replay =
        String::from_utf8(run_tool("man", &["-l"], &generated(&["man", "replay"], "r.1")).stdout)
            .unwrap();
    assert!(replay.contains("--list"), "{replay}");
}
