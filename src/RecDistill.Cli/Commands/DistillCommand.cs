using System.ComponentModel;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

[NotTaken("--model", "--layers", Hint = "the student has the teacher's backbone and layers")]
// Synthetic data is only ever the teacher's own: --data with --format synthetic is refused, and without --data these would change it.
[NotTaken("--synthetic-users", "--synthetic-items", Hint = "a student learns on its teacher's own data (synthetic data included), or on --data, a file with the teacher's ids")]
// Each method's own settings, refused for the methods that would ignore them.
[OnlyFor("--method", "mkd", "kd,rd,cd,de,rrd,htd,nkd,cpd,sld", "the weight of a single method's loss (MKD and its ablations take --lambda-nkd, --lambda-cpd and --lambda-sld; scratch has none), for --method", "--lambda")]
[OnlyFor("--method", "mkd", "nkd,mkd,nkd+cpd,nkd+sld", "NKD's settings, for --method", "--lambda-nkd", "--nkd-alpha", "--nkd-mixing")]
[OnlyFor("--method", "mkd", "cpd,mkd,nkd+cpd,cpd+sld", "CPD's settings, for --method", "--lambda-cpd", "--cpd-alpha", "--cpd-reg")]
[OnlyFor("--method", "mkd", "sld,mkd,nkd+sld,cpd+sld", "SLD's settings, for --method", "--lambda-sld", "--sld-tau", "--sld-beta")]
[OnlyFor("--cpd-reg", "listwise", "listwise,pairwise,hybrid", "the weight of CPD's regulariser, for --cpd-reg", "--cpd-alpha")]
// A part switched off takes none of its settings.
[NotWith("--no-nkd", "MKD without its NKD part", "--lambda-nkd", "--nkd-alpha", "--nkd-mixing")]
[NotWith("--no-cpd", "MKD without its CPD part", "--lambda-cpd", "--cpd-alpha", "--cpd-reg")]
[NotWith("--no-sld", "MKD without its SLD part", "--lambda-sld", "--sld-tau", "--sld-beta")]
[OnlyFor("--method", "mkd", "mkd", "MKD's part switches (MKD without one part is a method of its own: nkd+cpd, nkd+sld, cpd+sld), for --method", "--no-nkd", "--no-cpd", "--no-sld")]
[OptionText("--format", "With --data: citeulike | movielens | csv | lightgcn | split. Default: guessed from the path.")]
[OnlyWith("--data", "without --data the teacher's own data options rebuild its exact split", "--format", "--delimiter", "--header", "--columns", "--threshold", "--min-user", "--min-item", "--split")]
[OptionText("--data", "Distil on this dataset instead of the teacher's own (whose run.json rebuilds the exact split it was trained on); the cleaning and split options apply only with it.")]
[OptionText("--dim", "Student embedding dimension. Default: a tenth of the teacher's.")]
[OptionText("--wd", "Weight decay of the student (L2 on the rows a batch touches for BPR; on all parameters for LightGCN). Default: the teacher's backbone's, 1e-3 for bpr and 1e-4 for lightgcn.")]
[OptionText("--out", "Run directory of the student: metrics.json, model.bin, run.json, history.csv. Default: runs/METHOD-dDIM-seedSEED.")]
[OptionText("--seed", "Seed for initialisation, sampling and the method's own draws (and for --data's split). Same seed, same numbers.")]
public sealed class DistillSettings : TrainSettings
{
    [CommandOption("--teacher <DIR>")]
    [Description("Run directory of the teacher (written by train). Its data options are reused unless --data is given.")]
    public string Teacher { get; set; } = "";

    [CommandOption("--method <METHOD>")]
    [Description("scratch | kd | rd | cd | de | rrd | htd (baselines, SPEC 4.2) | nkd | cpd | sld | mkd (the paper's method and its parts) | nkd+cpd | nkd+sld | cpd+sld (MKD without one part: the ablation).")]
    [DefaultValue("mkd")]
    public string Method { get; set; } = "mkd";

    [CommandOption("--lambda <X>")] [Description("Weight of the distillation loss of a single method (kd, rd, cd, de, rrd, htd, nkd, cpd, sld). Default: the method's (SPEC 6, docs/distillation.md). For mkd use the three below.")] public double? Lambda { get; set; }
    [CommandOption("--lambda-nkd <X>")] [Description("NKD weight (default 0.5).")] public double? LambdaNkd { get; set; }
    [CommandOption("--lambda-cpd <X>")] [Description("CPD weight (default 0.05).")] public double? LambdaCpd { get; set; }
    [CommandOption("--lambda-sld <X>")] [Description("SLD weight (default 500).")] public double? LambdaSld { get; set; }
    [CommandOption("--no-nkd")] [Description("MKD without its NKD part (ablation).")] public bool NoNkd { get; set; }
    [CommandOption("--no-cpd")] [Description("MKD without its CPD part (ablation).")] public bool NoCpd { get; set; }
    [CommandOption("--no-sld")] [Description("MKD without its SLD part (ablation).")] public bool NoSld { get; set; }

    [CommandOption("--no-test")]
    [Description("Train and validate without the split's test set, removed before anything sees it as in tune: a run for diagnostics or a search of your own. Its metrics.json has no test metrics, and evaluate keeps its test held out unless --with-test.")]
    public bool NoTest { get; set; }

    [CommandOption("--nkd-mixing <MODE>")] [Description("soft (r ~ U(0, 2 alpha)) | hard (keep own coordinate with prob alpha).")]
    [DefaultValue("soft")] public string NkdMixing { get; set; } = "soft";
    [CommandOption("--nkd-alpha <X>")] [Description("NKD mixing alpha (default 0.5).")] public double? NkdAlpha { get; set; }
    [CommandOption("--cpd-reg <KIND>")] [Description("CPD regulariser: listwise | pairwise | hybrid | none.")]
    [DefaultValue("listwise")] public string CpdReg { get; set; } = "listwise";
    [CommandOption("--cpd-alpha <X>")] [Description("CPD regulariser weight alpha_C (default 0.1).")] public double? CpdAlpha { get; set; }
    [CommandOption("--sld-tau <X>")] [Description("SLD softmax temperature (default 1 for bpr, 10 for lightgcn).")] public double? SldTau { get; set; }
    [CommandOption("--sld-beta <X>")] [Description("SLD overlap weight beta (default 3 for bpr, 5 for lightgcn).")] public double? SldBeta { get; set; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Teacher)) return ValidationResult.Error("--teacher DIR is required (a run directory written by train)");
        if (!DistillationMethods.IsKnown(Method)) return ValidationResult.Error($"--method '{Method}' is not one of {string.Join(", ", DistillationMethods.AllNames)}");
        string method = Method.ToLowerInvariant();
        // nkd, cpd and sld alone take their weight as --lambda or as --lambda-PART: one of the two, not both.
        if (Lambda is not null && (method, LambdaNkd, LambdaCpd, LambdaSld) is ("nkd", not null, _, _) or ("cpd", _, not null, _) or ("sld", _, _, not null))
            return ValidationResult.Error($"--lambda and --lambda-{method} both set {method}'s weight: give one of them");
        foreach (var (name, value) in new[] { ("--lambda", Lambda), ("--lambda-nkd", LambdaNkd), ("--lambda-cpd", LambdaCpd), ("--lambda-sld", LambdaSld), ("--cpd-alpha", CpdAlpha), ("--sld-beta", SldBeta) })
            if (value is { } v && !(v >= 0 && double.IsFinite(v))) return ValidationResult.Error($"{name} must be a finite number of at least 0 (not {v})");
        if (SldTau is { } tau && !(tau > 0 && double.IsFinite(tau))) return ValidationResult.Error($"--sld-tau must be above 0 (not {tau}): SLD divides the scores by it");
        if (NkdAlpha is { } alpha && !(alpha >= 0 && alpha <= 1)) return ValidationResult.Error($"--nkd-alpha must be from 0 to 1 (not {alpha})");
        if (NkdMixing.ToLowerInvariant() is not ("soft" or "hard")) return ValidationResult.Error("--nkd-mixing must be soft or hard");
        if (!Enum.TryParse<PreferenceRegularizer>(CpdReg, true, out _)) return ValidationResult.Error("--cpd-reg must be listwise, pairwise, hybrid or none");
        return base.Validate();
    }

    public DistillationOptions ToDistillationOptions(Backbone backbone)
    {
        var d = DistillationOptions.Defaults(Method, backbone);
        if (Lambda is { } l)
            d = Method.ToLowerInvariant() switch
            {
                "kd" => d with { Kd = d.Kd with { Lambda = l } },
                "rd" => d with { Rd = d.Rd with { Lambda = l } },
                "cd" => d with { Cd = d.Cd with { Lambda = l } },
                "de" => d with { De = d.De with { Lambda = l } },
                "rrd" => d with { Rrd = d.Rrd with { Lambda = l } },
                "htd" => d with { Htd = d.Htd with { Lambda = l } },
                "nkd" => d with { Nkd = d.Nkd with { Lambda = l } },
                "cpd" => d with { Cpd = d.Cpd with { Lambda = l } },
                "sld" => d with { Sld = d.Sld with { Lambda = l } },
                _ => d,
            };
        return d with
        {
            UseNkd = !NoNkd, UseCpd = !NoCpd, UseSld = !NoSld,
            Nkd = d.Nkd with
            {
                Lambda = LambdaNkd ?? d.Nkd.Lambda, Alpha = NkdAlpha ?? d.Nkd.Alpha,
                Mixing = NkdMixing.ToLowerInvariant() == "hard" ? NeighborMixing.Hard : NeighborMixing.Soft,
            },
            Cpd = d.Cpd with
            {
                Lambda = LambdaCpd ?? d.Cpd.Lambda, AlphaC = CpdAlpha ?? d.Cpd.AlphaC,
                Regularizer = Enum.Parse<PreferenceRegularizer>(CpdReg, true),
            },
            Sld = d.Sld with { Lambda = LambdaSld ?? d.Sld.Lambda, Tau = SldTau ?? d.Sld.Tau, Beta = SldBeta ?? d.Sld.Beta },
        };
    }
}

/// <summary>`recdistill distill`: trains a small student against a frozen teacher with one method.</summary>
public sealed class DistillCommand : Command<DistillSettings>
{
    public override int Execute(CommandContext context, DistillSettings settings, CancellationToken cancellationToken)
    {
        var teacher = RunDirectory.ReadRecord(settings.Teacher);
        settings.RefuseAdamFor("distill", settings.Teacher, teacher.Model.Backbone);
        int dim = settings.Dim ?? Math.Max(1, teacher.Model.Dim / 10);
        var method = settings.Method.ToLowerInvariant();
        var outDir = settings.Out ?? Path.Combine("runs", $"{method}-d{dim}-seed{settings.Seed}");
        if (Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir)) == Path.TrimEndingDirectorySeparator(Path.GetFullPath(settings.Teacher)))
            throw new UserErrorException($"--out {outDir} is the teacher's own directory: the student would replace the teacher (give another --out)");
        return StopSignals.Run(cancellationToken, () => StopSignals.ResumeHint("distill", outDir), token =>
        {
            // The teacher's own data options rebuild the exact split it was trained on, unless --data says otherwise.
            var run = Workflow.Distill(settings.Teacher, method, settings.ToTrainOptions(teacher.Model.Backbone), settings.ToDistillationOptions(teacher.Model.Backbone),
                dim, CliApp.Output(outDir, "distill", settings.Overwrite), settings.Compute,
                settings.Data is null ? null : settings.ToOptions(), ConsoleReporter.Instance, withoutTest: settings.NoTest, cancellationToken: token);
            CliDisplay.ShowRun(run);
            AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(outDir)}[/]");
            return 0;
        });
    }
}
