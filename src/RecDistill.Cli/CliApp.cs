using RecDistill.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli;

/// <summary>The `recdistill` command tree; Program and the tests both run it.</summary>
public static class CliApp
{
    /// <summary>The arguments of the command being run, recorded in metrics.json.</summary>
    public static string CommandLine { get; private set; } = "";

    /// <summary>The arguments as given (after a --resume expansion): what resume.json records.</summary>
    public static string[] Args { get; private set; } = Array.Empty<string>();

    /// <summary>Each command's name and settings type: what the strict check and the help read.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Commands = new Dictionary<string, Type>
    {
        ["demo"] = typeof(DemoSettings),
        ["stats"] = typeof(DataSettings),
        ["train"] = typeof(TrainSettings),
        ["distill"] = typeof(DistillSettings),
        ["compare"] = typeof(CompareSettings),
        ["tune"] = typeof(TuneSettings),
        ["evaluate"] = typeof(EvaluateSettings),
        ["export"] = typeof(ExportSettings),
        ["recommend"] = typeof(RecommendSettings),
        ["similar"] = typeof(SimilarSettings),
        ["serve"] = typeof(ServeSettings),
        ["terms"] = typeof(TermsSettings),
    };

    /// <summary>The version and the commit it was built from (the SDK puts it in the informational version).</summary>
    public static string Version
    {
        get
        {
            var info = typeof(CliApp).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
            int plus = info.IndexOf('+');
            return plus < 0 ? info : $"{info[..plus]} (commit {info[(plus + 1)..Math.Min(info.Length, plus + 13)]})";
        }
    }

    public static int Run(string[] args)
    {
        ResumableRun.Directory = null;
        CommandLine = "recdistill " + string.Join(' ', args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("recdistill");
            c.SetApplicationVersion(Version);
            c.PropagateExceptions();
            c.UseStrictParsing();
            c.SetHelpProvider(new CommandHelp(c.Settings, Commands));
            c.AddCommand<DemoCommand>("demo")
                .WithDescription("The main job: train a teacher, a 1/10-size student from scratch and a 1/10-size MKD student on the built-in synthetic data (or --data), and print a table.");
            c.AddCommand<StatsCommand>("stats").WithDescription("Dataset statistics after cleaning and splitting.")
                .WithExample("stats", "--data", "../shared/data/citeulike-t/users.dat", "--format", "citeulike");
            c.AddCommand<TrainCommand>("train").WithDescription("Train a BPR-MF or LightGCN model with early stopping; writes metrics.json and model.bin.")
                .WithExample("train", "--data", "../shared/data/citeulike-t/users.dat", "--format", "citeulike", "--model", "bpr", "--dim", "200", "--out", "runs/teacher");
            c.AddCommand<DistillCommand>("distill").WithDescription("Train a small student against a frozen teacher: scratch, the baselines kd, rd, cd, de, rrd, htd, or nkd, cpd, sld, mkd.")
                .WithExample("distill", "--teacher", "runs/teacher", "--method", "mkd", "--out", "runs/mkd");
            c.AddCommand<CompareCommand>("compare").WithDescription("The paper's table in one command: a teacher, then every method for every seed; results.md/.csv/.json and PNG charts. Run it again to reuse finished runs and resume an interrupted one.")
                .WithExample("compare", "--data", "../shared/data/citeulike-t/users.dat", "--format", "citeulike", "--teacher-dim", "200", "--student-dim", "20", "--seeds", "3", "--out", "runs/compare");
            c.AddCommand<TuneCommand>("tune").WithDescription("Validation-only random search of the student's weight decay and each method's loss weight(s), plus one key parameter for kd, rd, cd, rrd, htd, nkd, cpd and sld, with the same budget for every method; compare --configs uses the choice. Run it again to continue.")
                .WithExample("tune", "--teacher", "runs/compare/teacher", "--trials", "8", "--out", "runs/tune");
            c.AddCommand<TermsCommand>("terms").WithDescription("Each loss term's mean loss and its share of the gradient on the shared student vectors, over the first, middle and last third of a finished distillation run (from its history.csv).")
                .WithExample("terms", "--model", "runs/mkd");
            c.AddCommand<EvaluateCommand>("evaluate").WithDescription("Full-ranking metrics of a saved run on its data (or on --data).")
                .WithExample("evaluate", "--model", "runs/teacher");
            c.AddCommand<ExportCommand>("export").WithDescription("Write a run's final vectors, id maps and train items into one compact serving file (rdm: fp32, fp16 or int8), or float32 .npy matrices and id lists (--format npy).")
                .WithExample("export", "--model", "runs/mkd", "--out", "student.rdm", "--precision", "int8");
            c.AddCommand<RecommendCommand>("recommend").WithDescription("Top-K items from an exported model: a table for --user, CSV for --users FILE, a new user folded in from --items.")
                .WithExample("recommend", "--model", "student.rdm", "--user", "42", "--k", "10")
                .WithExample("recommend", "--model", "student.rdm", "--items", "ART000123,ART000456");
            c.AddCommand<SimilarCommand>("similar").WithDescription("Item-to-item top-K from an exported model: the items that score highest with an item's vector.")
                .WithExample("similar", "--model", "student.rdm", "--item", "ART000123", "--k", "10");
            c.AddCommand<ServeCommand>("serve").WithDescription("Serve an exported model over HTTP (JSON; problem details; /health, /metrics, /openapi/v1.json); reloads the file when it is replaced; SIGTERM stops it gracefully.")
                .WithExample("serve", "--model", "student.rdm", "--urls", "http://127.0.0.1:8080");
        });
        try
        {
            args = ResumableRun.ExpandResume(args);
        }
        catch (UserErrorException e)
        {
            CliErrors.Report(e.Message);
            return 2;
        }
        Args = args.Skip(1).ToArray();
        if (ResumableRun.Directory is not null)
            CommandLine = "recdistill " + string.Join(' ', args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        // `recommend --k N` as documented: Spectre.Console.Cli rejects one-letter long options, so it is read as `-k N`.
        var normalized = args.Select(a => a == "--k" ? "-k" : a.StartsWith("--k=", StringComparison.Ordinal) ? "-k=" + a[4..] : a).ToArray();
        if (CheckArguments(normalized) is { } mistake)
        {
            CliErrors.Report(mistake);
            return 2;
        }
        if (normalized is ["--version"] or ["-v"])
        {
            AnsiConsole.WriteLine($"recdistill {Version}");
            return 0;
        }
        if (normalized.Length == 0)
        {
            // No command is a usage mistake (a script that lost its arguments must not pass): the overview, exit 2.
            app.Run(["--help"]);
            return 2;
        }
        return CliErrors.Run(() => app.Run(normalized));
    }

    /// <summary>
    /// A train/distill run directory as the CLI writes it: metrics.json records the command line, and a new
    /// run records its arguments (resume.json) so that --resume repeats exactly the same run.
    /// </summary>
    public static RecDistill.Runs.RunOutput Output(string dir, string command, bool overwrite)
    {
        bool resume = ResumableRun.Directory is not null;
        return new RecDistill.Runs.RunOutput(dir)
        {
            Overwrite = overwrite, Resume = resume, Command = command,
            CommandLine = CommandLine.Length > 0 ? CommandLine : command,
            OnPrepared = resume ? null : d => ResumableRun.Record(d, command, Args),
        };
    }

    /// <summary>The first mistake on the command line, or null: checked before anything runs, so nothing is written.</summary>
    public static string? CheckArguments(IReadOnlyList<string> args)
    {
        if (args.Count == 0) return null; // Spectre prints the overview
        string first = args[0];
        if (first is "-h" or "--help" or "-?") return args.Count == 1 ? null : $"unexpected argument '{args[1]}' after {first}";
        if (first is "--version" or "-v") return args.Count == 1 ? null : $"unexpected argument '{args[1]}' after {first}";
        if (!Commands.TryGetValue(first, out var settings))
        {
            var close = Commands.Keys.OrderBy(k => StrictArguments.Distance(first, k)).First();
            string hint = StrictArguments.Distance(first, close) <= 2 ? $"; did you mean '{close}'?" : "";
            return first.StartsWith('-')
                ? $"'{first}' before a command: recdistill COMMAND [OPTIONS] (commands: {string.Join(", ", Commands.Keys)})"
                : $"unknown command '{first}'{hint} (commands: {string.Join(", ", Commands.Keys)})";
        }
        return StrictArguments.Check(first, settings, args.Skip(1).ToList(), Commands);
    }
}
