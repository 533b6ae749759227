//! The container and Kubernetes files run slowlab with command lines of their own; these tests
//! check that those command lines are ones slowlab accepts, so the files cannot drift from the
//! CLI unnoticed. (Their Kubernetes shape is checked by CI against the API schemas.)

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Every `slowlab …` command in a shell script, up to a redirection or the end of the command.
fn slowlab_commands(script: &str) -> Vec<Vec<String>> {
    script
        .split(['&', ';', '\n'])
        .flat_map(|part| part.split("&&"))
        .filter_map(|command| {
            let words: Vec<String> = command
                .split_whitespace()
                .take_while(|word| !word.starts_with('>'))
                .map(|word| {
                    word.trim_matches('"')
                        .replace("$JOB_COMPLETION_INDEX", "3")
                        .replace("shard-*.json", "shard-3.json")
                })
                .collect();
            (words.first()? == "slowlab").then_some(words)
        })
        .collect()
}

/// The folded `args: - >- …` scripts of a manifest, joined into one line each.
fn folded_scripts(yaml: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "- >-" {
            let indent = line.len() - line.trim_start().len();
            let mut script = String::new();
            while let Some(next) = lines.peek() {
                if next.len() - next.trim_start().len() <= indent || next.trim().is_empty() {
                    break;
                }
                script.push_str(next.trim());
                script.push(' ');
                lines.next();
            }
            scripts.push(script);
        }
    }
    scripts
}

fn assert_accepted(words: &[String], source: &str) {
    if let Err(err) = slowlab::parse_args(words) {
        let message = match err {
            slowlab::ArgsError::Clap(err) => err.to_string(),
            slowlab::ArgsError::Usage(err) => err.to_string(),
        };
        panic!("{source}: slowlab refuses {words:?}: {message}");
    }
}

#[test]
fn the_jobs_run_command_lines_slowlab_accepts() {
    let mut seen = 0;
    for file in [
        "deploy/kubernetes/fetch-job.yaml",
        "deploy/kubernetes/merge-job.yaml",
    ] {
        for script in folded_scripts(&read(file)) {
            for words in slowlab_commands(&script) {
                assert_accepted(&words, file);
                seen += 1;
            }
        }
    }
    // fetch in the Job; merge and show in the merge Job.
    assert_eq!(seen, 3);
}

#[test]
fn the_server_manifest_and_the_image_start_serve_as_slowlab_accepts() {
    let yaml = read("deploy/kubernetes/serve.yaml");
    let args: Vec<String> = yaml
        .lines()
        .skip_while(|line| line.trim() != "args:")
        .skip(1)
        .take_while(|line| line.trim_start().starts_with("- "))
        .map(|line| line.trim_start()[2..].trim_matches('"').to_owned())
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let mut words = vec!["slowlab".to_owned()];
    words.extend(args);
    assert_accepted(&words, "deploy/kubernetes/serve.yaml");

    let dockerfile = read("Dockerfile");
    let cmd = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .expect("the Dockerfile has a CMD");
    let mut words = vec!["slowlab".to_owned()];
    words.extend(serde_json::from_str::<Vec<String>>(cmd).expect("CMD in exec form"));
    assert_accepted(&words, "Dockerfile");
}
