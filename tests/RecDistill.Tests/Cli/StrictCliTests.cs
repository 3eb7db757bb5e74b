using System.Diagnostics;
using System.Text.RegularExpressions;
using RecDistill.Cli;

namespace RecDistill.Tests.Cli;

/// <summary>The command line never guesses: each misuse is one line, exit code 2, nothing written.</summary>
public class StrictCliTests
{
    [Theory]
    [InlineData("train --bogus 3", "train: unknown option '--bogus'; see recdistill train --help")]
    [InlineData("train --dta ratings.csv", "train: unknown option '--dta'; did you mean '--data'?")]
    [InlineData("stats --min-users 10", "stats: unknown option '--min-users'; did you mean '--min-user'?")]
    [InlineData("distill --teacher t --student-dim 4", "distill: unknown option '--student-dim' (an option of demo, compare); see recdistill distill --help")]
    [InlineData("train --epochs abc", "train: --epochs: 'abc' is not a whole number")]
    [InlineData("train --epochs 99999999999", "train: --epochs: '99999999999' is too large")]
    [InlineData("train --lr fast", "train: --lr: 'fast' is not a number")]
    [InlineData("train --lr NaN", "train: --lr: 'NaN' is not a number")]
    [InlineData("recommend --model m --user U1 --user U2", "recommend: --user is given twice")]
    [InlineData("stats --data x.csv --columns", "stats: --columns needs a value (LIST)")]
    [InlineData("serve --model m --port 80", "serve: unknown option '--port'; see recdistill serve --help")]
    [InlineData("serve --model m --max-k many", "serve: --max-k: 'many' is not a whole number")]
    [InlineData("stats --header maybe", "stats: --header: 'maybe' is not true or false")]
    [InlineData("stats --header", "stats: --header needs a value (true or false)")]
    [InlineData("train --epochs", "train: --epochs needs a value (a whole number)")]
    [InlineData("train --epochs --dim 4", "train: --epochs needs a value (a whole number)")]
    [InlineData("train --overwrite yes", "train: unexpected argument 'yes' (every value follows its option, e.g. --data PATH)")]
    [InlineData("train --overwrite=yes", "train: --overwrite takes no value (not 'yes')")]
    [InlineData("stats extra", "stats: unexpected argument 'extra' (every value follows its option, e.g. --data PATH)")]
    [InlineData("train --epochs 3 --epochs 4", "train: --epochs is given twice")]
    [InlineData("compare --dim 8", "compare does not take --dim: compare sets dimensions with --teacher-dim and --student-dim, and reuses an existing --out instead of overwriting it")]
    [InlineData("distill --teacher t --model lightgcn", "distill does not take --model: the student has the teacher's backbone and layers")]
    [InlineData("distill --teacher t --min-user 3", "distill: --min-user needs --data (without --data the teacher's own data options rebuild its exact split)")]
    [InlineData("tune --teacher t --wd 0.1", "tune does not take --wd: tuning uses the teacher's own data split (without its test set) and backbone, searches the weight decay, and continues an interrupted search when run again")]
    [InlineData("compare --report-only --records r --epochs 5", "compare: --epochs has no effect with --report-only (it trains nothing and rebuilds the report from the records; it takes --out, --records, --methods, --title, --import)")]
    [InlineData("compare --teachers a,b --seeds 3", "compare: --seeds has no effect with --teachers (each teacher gives one run, on its own data and backbone)")]
    [InlineData("compare --teachers a --data x.csv", "compare: --data has no effect with --teachers (each teacher gives one run, on its own data and backbone)")]
    [InlineData("compare --teachers a --layers 1", "compare: --layers has no effect with --teachers (each teacher gives one run, on its own data and backbone)")]
    [InlineData("tune --report-only --out d --trials 3", "tune: --trials has no effect with --report-only (it trains nothing and rebuilds trials.md and trials.csv from the records; it takes --out)")]
    [InlineData("distill --teacher t --method kd --lambda-nkd 0.3", "distill: --lambda-nkd has no effect with --method kd (NKD's settings, for --method nkd, mkd, nkd+cpd, nkd+sld)")]
    [InlineData("distill --teacher t --method KD --sld-tau 2", "distill: --sld-tau has no effect with --method kd (SLD's settings, for --method sld, mkd, nkd+sld, cpd+sld)")]
    [InlineData("distill --teacher t --method nkd+sld --cpd-alpha 0.2", "distill: --cpd-alpha has no effect with --method nkd+sld (CPD's settings, for --method cpd, mkd, nkd+cpd, cpd+sld)")]
    [InlineData("distill --teacher t --method nkd+sld --no-sld", "distill: --no-sld has no effect with --method nkd+sld (MKD's part switches (MKD without one part is a method of its own: nkd+cpd, nkd+sld, cpd+sld), for --method mkd)")]
    [InlineData("distill --teacher t --no-nkd --lambda-nkd 2", "distill: --lambda-nkd has no effect with --no-nkd (MKD without its NKD part)")]
    [InlineData("distill --teacher t --method mkd --no-cpd --cpd-reg pairwise", "distill: --cpd-reg has no effect with --no-cpd (MKD without its CPD part)")]
    [InlineData("distill --teacher t --no-sld --sld-tau 2", "distill: --sld-tau has no effect with --no-sld (MKD without its SLD part)")]
    [InlineData("distill --teacher t --method cpd --cpd-reg none --cpd-alpha 0.7", "distill: --cpd-alpha has no effect with --cpd-reg none (the weight of CPD's regulariser, for --cpd-reg listwise, pairwise, hybrid)")]
    [InlineData("distill --teacher t --lambda 2", "distill: --lambda has no effect with --method mkd (the weight of a single method's loss (MKD and its ablations take --lambda-nkd, --lambda-cpd and --lambda-sld; scratch has none), for --method kd, rd, cd, de, rrd, htd, nkd, cpd, sld)")]
    [InlineData("distill --teacher t --method scratch --lambda 2", "distill: --lambda has no effect with --method scratch (the weight of a single method's loss (MKD and its ablations take --lambda-nkd, --lambda-cpd and --lambda-sld; scratch has none), for --method kd, rd, cd, de, rrd, htd, nkd, cpd, sld)")]
    [InlineData("train --model bpr --layers 2", "train: --layers has no effect with --model bpr (LightGCN's propagation layers, for --model lightgcn)")]
    [InlineData("train --model lightgcn --adam exact", "train: --adam has no effect with --model lightgcn (BPR's row-sparse Adam; LightGCN trains with dense Adam, for --model bpr)")]
    [InlineData("compare --layers 2", "compare: --layers has no effect with --model bpr (LightGCN's propagation layers, for --model lightgcn)")]
    [InlineData("serve --model m --hnsw-candidates 64", "serve: --hnsw-candidates has no effect with --index exact (the HNSW index's search width, for --index hnsw)")]
    [InlineData("export --model m --out x.rdm --no-check", "export: --no-check has no effect with --precision fp32 (the accuracy cost of a reduced precision, measured for --precision fp16, int8)")]
    [InlineData("recommend --model m --user 1 --threads 2", "recommend: --threads needs --users (the users of a file are scored in parallel; one list takes one thread)")]
    [InlineData("evaluate --model m --seed 3", "evaluate: --seed needs --data (without --data the run's own data options rebuild its exact split)")]
    [InlineData("stats --data d.csv --synthetic-users 10", "stats: --synthetic-users has no effect with --data (--synthetic-users and --synthetic-items size the synthetic data, which --data replaces)")]
    [InlineData("train --data d.csv --synthetic-items 10", "train: --synthetic-items has no effect with --data (--synthetic-users and --synthetic-items size the synthetic data, which --data replaces)")]
    [InlineData("demo --data d.csv --synthetic-users 10", "demo: --synthetic-users has no effect with --data (--synthetic-users and --synthetic-items size the synthetic data, which --data replaces)")]
    [InlineData("compare --data d.csv --synthetic-users 10", "compare: --synthetic-users has no effect with --data (--synthetic-users and --synthetic-items size the synthetic data, which --data replaces)")]
    [InlineData("distill --teacher t --data d.csv --synthetic-users 10", "distill does not take --synthetic-users: a student learns on its teacher's own data (synthetic data included), or on --data, a file with the teacher's ids")]
    [InlineData("distill --teacher t --synthetic-items 10", "distill does not take --synthetic-items: a student learns on its teacher's own data (synthetic data included), or on --data, a file with the teacher's ids")]
    [InlineData("evaluate --model m --data d.csv --synthetic-items 10", "evaluate does not take --synthetic-items: a run is evaluated on its own data (synthetic data included, rebuilt from its run.json), or on --data, a file with the run's ids")]
    [InlineData("evaluate --model m --synthetic-users 10", "evaluate does not take --synthetic-users: a run is evaluated on its own data (synthetic data included, rebuilt from its run.json), or on --data, a file with the run's ids")]
    [InlineData("stats --synthetic-users 150 --synthetic-items 200 --threshold 3", "stats: --threshold has no effect with synthetic data (it is generated, with no file to parse and no ratings to keep or drop)")]
    [InlineData("train --delimiter tab", "train: --delimiter has no effect with synthetic data (it is generated, with no file to parse and no ratings to keep or drop)")]
    [InlineData("demo --header true", "demo: --header has no effect with synthetic data (it is generated, with no file to parse and no ratings to keep or drop)")]
    [InlineData("compare --format synthetic --threshold 4", "compare: --threshold has no effect with synthetic data (it is generated, with no file to parse and no ratings to keep or drop)")]
    [InlineData("trian --epochs 1", "unknown command 'trian'; did you mean 'train'? (commands: demo, stats, train, distill, compare, tune, evaluate, export, recommend, similar, serve, terms)")]
    [InlineData("--epochs 1", "'--epochs' before a command: recdistill COMMAND [OPTIONS] (commands: demo, stats, train, distill, compare, tune, evaluate, export, recommend, similar, serve, terms)")]
    public void A_misuse_is_one_line_naming_the_option(string commandLine, string expected)
    {
        var args = commandLine.Split(' ');
        Assert.Equal(expected, CliApp.CheckArguments(args));
        Assert.Equal(2, CliApp.Run(args));
    }

    [Theory]
    [InlineData("train --epochs 3 --dim 4 --lr 0.01 --wd 0 --overwrite --out x")]
    [InlineData("train --epochs=3 --lr:1e-2 --threshold -1 --data x.csv")]
    [InlineData("stats --header true --data x.csv --min-user 0")]
    [InlineData("recommend --model m --user 3 -k 5")]
    [InlineData("recommend --model m --user 3 --top 5")]
    [InlineData("serve --model m --urls http://127.0.0.1:0 --index hnsw --hnsw-candidates 64 --max-k 100 --max-batch 50 --no-watch")]
    [InlineData("compare --import kd:1=a --import teacher=b --teacher-dim 8")]
    [InlineData("distill --teacher t --data d --min-user 2 --method kd --lambda 0.5")]
    [InlineData("distill --teacher t --method nkd+sld --lambda-nkd 0.3 --nkd-alpha 0.4 --sld-tau 2 --sld-beta 3 --lambda-sld 50")]
    [InlineData("distill --teacher t --no-sld --lambda-nkd 0.3 --cpd-reg none")]
    [InlineData("distill --teacher t --method cpd --cpd-reg Hybrid --cpd-alpha 0.2")]
    [InlineData("tune --teacher t --methods kd,mkd --trials 4 --dim 8 --epochs 50")]
    [InlineData("compare --configs runs/tune --seeds 3")]
    [InlineData("compare --report-only --records r --out o --methods kd,mkd --title t --import kd:1=a")]
    [InlineData("tune --report-only --out d")]
    [InlineData("compare --teachers a,b --configs c --seed 5 --student-dim 10 --epochs 3 --threads 1 --methods kd --out o")]
    [InlineData("train --help")]
    [InlineData("--version")]
    public void Well_formed_command_lines_pass_the_check(string commandLine) =>
        Assert.Null(CliApp.CheckArguments(commandLine.Split(' ')));

    [Fact]
    public void A_mistake_writes_nothing_even_after_valid_options()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        Assert.Equal(2, CliApp.Run(new[] { "train", "--epochs", "1", "--out", dir, "--bogus", "3" }));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Every_option_of_every_command_is_checked_by_its_type()
    {
        // No option reaches Spectre's converters (whose messages name .NET types) with a malformed value.
        foreach (var (command, settings) in CliApp.Commands)
            foreach (var option in StrictArguments.OptionsOf(settings).Where(o => o.TakesValue))
            {
                var required = command switch
                {
                    "distill" or "tune" => new[] { "--teacher", "t" },
                    _ => Array.Empty<string>(),
                };
                var args = new[] { command }.Concat(required).Concat(new[] { option.Name, "x!y" }).ToArray();
                var message = CliApp.CheckArguments(args);
                bool isText = option.Type == typeof(string);
                if (isText) continue;
                Assert.NotNull(message);
                Assert.DoesNotContain("Int32", message);
                Assert.DoesNotContain("Double", message);
                Assert.Contains(option.Name, message);
            }
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("stats")]
    [InlineData("train")]
    [InlineData("distill")]
    [InlineData("compare")]
    [InlineData("tune")]
    [InlineData("evaluate")]
    [InlineData("export")]
    [InlineData("recommend")]
    [InlineData("serve")]
    public void Help_lists_exactly_the_options_the_command_takes(string command)
    {
        var help = RunCli(command, "--help");
        var section = help[help.IndexOf("OPTIONS:", StringComparison.Ordinal)..];
        // An option's own line is indented by 4 or 8; a wrapped description (which may start with an option's name) by more.
        var listed = Regex.Matches(section, @"^    (?:-\w, |    )(--[a-z][a-z0-9-]*)", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).Where(n => n != "--help").ToHashSet();
        var taken = StrictArguments.OptionsOf(CliApp.Commands[command]).Select(o => o.Aliases.First(a => a.StartsWith("--"))).ToHashSet();
        Assert.Equal(taken.Order(), listed.Order());
        if (command is "distill" or "evaluate")
            Assert.DoesNotContain("built-in synthetic", section); // their data is the run's own unless --data
    }

    [Fact]
    public void Distill_help_gives_the_weight_decay_default_of_either_backbone()
    {
        // A LightGCN teacher's student takes 1e-4 (CliTests.A_student_of_a_lightgcn_teacher_takes_lightgcn_s_default_weight_decay).
        var wd = Regex.Match(RunCli("distill", "--help"), @"--wd <X>(.|\n)*?--adam").Value;
        Assert.Contains("1e-4 for lightgcn", Regex.Replace(wd, @"\s+", " "));
    }

    [Fact]
    public void Version_prints_the_version_and_the_commit()
    {
        var output = RunCli("--version").Trim();
        Assert.Matches(@"^recdistill \d+\.\d+\.\d+ \(commit [0-9a-f]{7,12}\)$", output);
    }

    [Theory]
    [InlineData("stats --data D --min-user -1", "--min-user must be 0 or more (not -1)")]
    [InlineData("stats --data D --min-item -2", "--min-item must be 0 or more (not -2)")]
    [InlineData("stats --data D --threshold 1e40", "--threshold must be a finite number")]
    [InlineData("train --data D --min-user -1 --out O", "--min-user must be 0 or more (not -1)")]
    [InlineData("demo --data D --min-item -1 --out O", "--min-item must be 0 or more (not -1)")]
    [InlineData("compare --data D --min-item -1 --out O", "--min-item must be 0 or more (not -1)")]
    [InlineData("distill --teacher T --data D --min-user -3 --out O", "--min-user must be 0 or more (not -3)")]
    [InlineData("evaluate --model T --data D --min-item -1", "--min-item must be 0 or more (not -1)")]
    [InlineData("demo --data D --student-dim 0 --out O", "--student-dim must be at least 1 (not 0)")]
    [InlineData("demo --data D --teacher-dim -4 --out O", "--teacher-dim must be at least 1 (not -4)")]
    [InlineData("compare --data D --student-dim 0 --out O", "--student-dim must be at least 1 (not 0)")]
    public void A_data_option_out_of_range_is_named(string commandLine, string expected)
    {
        var dir = TestData.TempDir();
        var data = Path.Combine(dir, "d.csv");
        File.WriteAllText(data, "1,2\n1,3\n");
        var args = commandLine.Split(' ').Select(a => a switch { "D" => data, "O" => Path.Combine(dir, "o"), "T" => Path.Combine(dir, "t"), _ => a }).ToArray();
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, errors);
        Assert.DoesNotContain("Parameter", errors);
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Theory]
    [InlineData("stats")]
    [InlineData("train")]
    [InlineData("demo")]
    [InlineData("compare")]
    public void A_time_split_of_synthetic_data_is_refused(string command)
    {
        var dir = TestData.TempDir();
        var args = new[] { command, "--split", "time" };
        if (command != "stats") args = [.. args, "--out", Path.Combine(dir, "o")];
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors(args);
        Assert.Equal(2, code);
        Assert.Contains("--split time has no effect with synthetic data (its made-up timestamps follow each user's list order, so a time split is the order split)", errors);
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Theory]
    [InlineData("--method sld --sld-tau 0", "--sld-tau must be above 0 (not 0): SLD divides the scores by it")]
    [InlineData("--method kd --lambda -5", "--lambda must be a finite number of at least 0 (not -5)")]
    [InlineData("--lambda-cpd -0.1", "--lambda-cpd must be a finite number of at least 0 (not -0.1)")]
    [InlineData("--method nkd --nkd-alpha 1.5", "--nkd-alpha must be from 0 to 1 (not 1.5)")]
    [InlineData("--method sld --lambda 2 --lambda-sld 3", "--lambda and --lambda-sld both set sld's weight: give one of them")]
    public void A_method_setting_out_of_range_is_refused_before_training(string options, string expected)
    {
        var dir = TestData.TempDir();
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors(
            new[] { "distill", "--teacher", Path.Combine(dir, "t"), "--out", Path.Combine(dir, "s") }.Concat(options.Split(' ')).ToArray());
        Assert.Equal(2, code);
        Assert.Contains(expected, errors);
        Assert.False(Directory.Exists(Path.Combine(dir, "s")));
    }

    /// <summary>The CLI as a user runs it (help and version are written by the process, not returned).</summary>
    private static string RunCli(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["COLUMNS"] = "200";
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stderr}");
        return stdout.Result;
    }
}
