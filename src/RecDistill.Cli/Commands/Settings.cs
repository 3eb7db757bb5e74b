using RecDistill.Distillation;
using System.ComponentModel;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

/// <summary>Where the interactions come from and how they are cleaned and split.</summary>
/// <remarks>
/// Every command that reads data repeats the rules below (the strict-option attributes are not inherited):
/// train, compare and demo both; distill and evaluate take no synthetic sizes and have --data rules of their own.
/// </remarks>
[OptionText("--seed", "Seed of the synthetic data and of a random split (--split random).")]
[OnlyWith("--data", DataSettings.SyntheticIsGenerated, "--delimiter", "--header", "--threshold", Without = "synthetic data")]
[NotWith("--data", DataSettings.SyntheticOnly, "--synthetic-users", "--synthetic-items")]
public class DataSettings : CommandSettings
{
    /// <summary>Why file options mean nothing for synthetic data.</summary>
    public const string SyntheticIsGenerated = "it is generated, with no file to parse and no ratings to keep or drop";

    /// <summary>Why the synthetic sizes mean nothing with a file.</summary>
    public const string SyntheticOnly = "--synthetic-users and --synthetic-items size the synthetic data, which --data replaces";

    [CommandOption("--data <PATH>")]
    [Description("Dataset file (or directory for --format split); a name ending in .gz is read through gzip. Omitted: the built-in synthetic dataset.")]
    public string? Data { get; set; }

    [CommandOption("--format <FORMAT>")]
    [Description("citeulike | movielens | csv | lightgcn | split | synthetic. Default: synthetic without --data, else guessed from the path.")]
    public string? Format { get; set; }

    [CommandOption("--delimiter <CHAR>")]
    [Description("Column delimiter for csv: tab, comma, semicolon, space (any run of spaces and tabs), or a literal such as | or ::. A one-character delimiter other than space reads RFC 4180 text: quoted fields, doubled quotes, delimiters and line breaks inside quotes. Default: detected.")]
    public string? Delimiter { get; set; }

    [CommandOption("--header <BOOL>")]
    [Description("Whether a csv file has a header line. Default: detected (a field without digits above one with digits), and true when --columns names columns.")]
    public bool? Header { get; set; }

    [CommandOption("--columns <LIST>")]
    [Description("csv: the user, item and optional rating and timestamp columns, by header name or 1-based position, e.g. user_id,parent_asin,rating,timestamp or 2,1 (other columns are ignored). Default: the first 2 to 4 fields in that order.")]
    public string? Columns { get; set; }

    [CommandOption("--threshold <X>")]
    [Description("Keep rated interactions with rating >= X as positives. Default: keep all.")]
    public float? Threshold { get; set; }

    [CommandOption("--min-user <N>")]
    [Description("k-core: users need at least N interactions (repeated with --min-item until stable). Default: 5 (0 for split).")]
    public int? MinUser { get; set; }

    [CommandOption("--min-item <N>")]
    [Description("k-core: items need at least N interactions. Default: 0.")]
    [DefaultValue(0)]
    public int MinItem { get; set; }

    [CommandOption("--split <METHOD>")]
    [Description("order (each user's list in file order, SPEC) | random (seeded, per user) | time (by timestamp); ignored for pre-split data (--format split: the files are the split). Default: order.")]
    [DefaultValue("order")]
    public string Split { get; set; } = "order";

    [CommandOption("--synthetic-users <N>")]
    [Description("Users of the synthetic dataset.")]
    [DefaultValue(1500)]
    public int SyntheticUsers { get; set; } = 1500;

    [CommandOption("--synthetic-items <N>")]
    [Description("Items of the synthetic dataset.")]
    [DefaultValue(2500)]
    public int SyntheticItems { get; set; } = 2500;

    [CommandOption("--seed <N>")]
    [Description("Seed for data generation, random splits, initialisation and sampling. Same seed, same numbers.")]
    [DefaultValue(2023)]
    public int Seed { get; set; } = 2023;

    public override ValidationResult Validate()
    {
        if (Format is not null && ParseFormat(Format) is null)
            return ValidationResult.Error($"--format '{Format}' is not one of citeulike, movielens, csv, lightgcn, split, synthetic");
        if (ParseSplit(Split) is null)
            return ValidationResult.Error($"--split '{Split}' is not one of order, random, time");
        if (Data is null && Format is not null && ParseFormat(Format) != DataFormat.Synthetic)
            return ValidationResult.Error($"--format {Format} needs --data PATH");
        if (Data is not null && Format is not null && ParseFormat(Format) == DataFormat.Synthetic)
            return ValidationResult.Error($"--data {Data} with --format synthetic: synthetic data is generated (--synthetic-users, --synthetic-items, --seed), so the file would be ignored; give one of the two");
        // The library's own checks name its properties (MinUserInteractions); these name the options.
        if (MinUser < 0) return ValidationResult.Error($"--min-user must be 0 or more (not {MinUser})");
        if (MinItem < 0) return ValidationResult.Error($"--min-item must be 0 or more (not {MinItem})");
        if (Threshold is { } t && !float.IsFinite(t))
            return ValidationResult.Error("--threshold must be a finite number (it is read as a 32-bit float; its largest value is about 3.4e38)");
        if (Data is null && ParseSplit(Split) == SplitMethod.Time)
            return ValidationResult.Error("--split time has no effect with synthetic data (its made-up timestamps follow each user's list order, so a time split is the order split): use --split order or random, or --data with a timestamp column");
        if (SyntheticUsers < 2 || SyntheticItems < 2) return ValidationResult.Error("--synthetic-users and --synthetic-items must be at least 2");
        int fewest = new SyntheticOptions().MinInteractionsPerUser;
        if (SyntheticItems < fewest)
            return ValidationResult.Error($"--synthetic-items must be at least {fewest}: every synthetic user gets at least {fewest} different items");
        if (Columns is not null)
        {
            if (Data is null || ToOptions().Format != DataFormat.Csv) return ValidationResult.Error("--columns applies to csv data (--format csv)");
            try { ColumnChoice.Parse(ColumnList(Columns)); }
            catch (ArgumentException e) { return ValidationResult.Error("--" + e.Message); }
            if (Header == false && ColumnChoice.Parse(ColumnList(Columns)).NeedsHeader)
                return ValidationResult.Error("--columns names columns, which needs --header true (or positions: 1, 2, ...)");
            if (Threshold is not null && !ColumnChoice.Parse(ColumnList(Columns)).HasRating)
                return ValidationResult.Error("--threshold keeps ratings at or above it, but --columns chooses no rating column (user, item, rating, [timestamp])");
        }
        return ValidationResult.Success();
    }

    public static DataFormat? ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "citeulike" => DataFormat.Citeulike,
        "movielens" => DataFormat.Movielens,
        "csv" or "tsv" => DataFormat.Csv,
        "lightgcn" => DataFormat.Lightgcn,
        "split" => DataFormat.Split,
        "synthetic" => DataFormat.Synthetic,
        _ => null,
    };

    public static SplitMethod? ParseSplit(string s) => s.ToLowerInvariant() switch
    {
        "order" => SplitMethod.Order,
        "random" => SplitMethod.Random,
        "time" => SplitMethod.Time,
        _ => null,
    };

    public DataOptions ToOptions()
    {
        var format = Format is not null ? ParseFormat(Format)!.Value : Data is null ? DataFormat.Synthetic : GuessFormat(Data);
        return new DataOptions
        {
            Path = Data,
            Format = format,
            Delimiter = Delimiter,
            Header = Header,
            Columns = Columns is null ? null : ColumnList(Columns),
            PositiveThreshold = Threshold,
            MinUserInteractions = MinUser,
            MinItemInteractions = MinItem,
            Split = ParseSplit(Split)!.Value,
            Seed = Seed,
            Synthetic = new SyntheticOptions { Users = SyntheticUsers, Items = SyntheticItems, Seed = Seed },
        };
    }

    private static string[] ColumnList(string text) => text.Split(',');

    private static DataFormat GuessFormat(string path)
    {
        if (Directory.Exists(path)) return DataFormat.Split;
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".gz", StringComparison.Ordinal)) name = name[..^3];
        if (name == "users.dat") return DataFormat.Citeulike;
        if (name is "u.data" or "ratings.dat") return DataFormat.Movielens;
        return DataFormat.Csv;
    }
}

/// <summary>Backbone and optimisation settings shared by train, distill and demo.</summary>
[OnlyFor("--model", "bpr", "lightgcn", "LightGCN's propagation layers, for --model", "--layers")]
[OnlyFor("--model", "bpr", "bpr", "BPR's row-sparse Adam; LightGCN trains with dense Adam, for --model", "--adam")]
[OnlyWith("--data", DataSettings.SyntheticIsGenerated, "--delimiter", "--header", "--threshold", Without = "synthetic data")]
[NotWith("--data", DataSettings.SyntheticOnly, "--synthetic-users", "--synthetic-items")]
public class TrainSettings : DataSettings
{
    [CommandOption("--model <BACKBONE>")]
    [Description("bpr | lightgcn.")]
    [DefaultValue("bpr")]
    public string Model { get; set; } = "bpr";

    [CommandOption("--dim <N>")]
    [Description("Embedding dimension. Default: 200.")]
    public int? Dim { get; set; }

    [CommandOption("--layers <N>")]
    [Description("LightGCN propagation layers.")]
    [DefaultValue(3)]
    public int Layers { get; set; } = 3;

    [CommandOption("--epochs <N>")]
    [Description("Maximum epochs.")]
    [DefaultValue(400)]
    public int Epochs { get; set; } = 400;

    [CommandOption("--eval-every <N>")]
    [Description("Validate every N epochs.")]
    [DefaultValue(5)]
    public int EvalEvery { get; set; } = 5;

    [CommandOption("--patience <N>")]
    [Description("Early stopping: validations without a better validation NDCG@20 before stopping.")]
    [DefaultValue(10)]
    public int Patience { get; set; } = 10;

    [CommandOption("--lr <X>")]
    [Description("Adam learning rate.")]
    [DefaultValue(1e-3)]
    public double Lr { get; set; } = 1e-3;

    [CommandOption("--wd <X>")]
    [Description("Weight decay (L2 on the rows a batch touches for BPR; on all parameters for LightGCN). Default: 1e-3 for bpr, 1e-4 for lightgcn (a student: its teacher's backbone's).")]
    public double? Wd { get; set; }

    [CommandOption("--adam <MODE>")]
    [Description("BPR's row-sparse Adam: lazy (rows outside the batch stay as they are; SPEC's protocol) or exact (dense Adam's result, with L2 decay and momentum on every row at every step, at a fraction of its cost). Default: lazy.")]
    public string? Adam { get; set; } // null when not given: distill refuses it for a LightGCN teacher, known only once read

    [CommandOption("--batch-size <N>")]
    [Description("Mini-batch size (train pairs per step).")]
    [DefaultValue(2048)]
    public int BatchSize { get; set; } = 2048;

    [CommandOption("--negatives <N>")]
    [Description("Negative items sampled per train pair and epoch.")]
    [DefaultValue(1)]
    public int Negatives { get; set; } = 1;

    [CommandOption("--device <DEVICE>")]
    [Description("cpu | cuda (needs a CUDA build of libtorch: a CUDA package instead of the CPU one, or an installed PyTorch's with -p:LibTorch=external; see docs/torchsharp.md).")]
    [DefaultValue("cpu")]
    public string Device { get; set; } = "cpu";

    [CommandOption("--threads <N>")]
    [Description("CPU threads for tensor work. Default: all cores.")]
    public int? Threads { get; set; }

    [CommandOption("--kernels <MODE>")]
    [Description("accelerated | plain | plain:NAME,NAME...: run the hand-written CPU kernels where they apply, none of them (each method's plain tensor form), or all but the named ones (sgemm, list-scores, nkd-loss, htd-loss, graph-propagation). Same results up to float rounding; for A/B timing and checks.")]
    [DefaultValue("accelerated")]
    public string Kernels { get; set; } = "accelerated";

    [CommandOption("--out <DIR>")]
    [Description("Run directory: metrics.json, model.bin, run.json, history.csv. Default: runs/MODEL-dDIM-seedSEED.")]
    public string? Out { get; set; }

    [CommandOption("--overwrite")]
    [Description("Replace the run in a directory that already holds one: its files are deleted before the new run trains.")]
    public bool Overwrite { get; set; }

    [CommandOption("--resume <DIR>")]
    [Description("Continue an interrupted run from its last checkpoint (written with every validation and at least once a minute), with the run's own options (only --threads and --device may be given again). The result equals an uninterrupted run's.")]
    public string? Resume { get; set; }

    public Backbone Backbone => Model.ToLowerInvariant() == "lightgcn" ? Backbone.LightGcn : Backbone.Bpr;

    public RecDistill.Runs.ComputeOptions Compute => new(Device, Threads)
    {
        Kernels = RecDistill.Runs.KernelChoice.Parse(Kernels),
    };

    public override ValidationResult Validate()
    {
        var v = base.Validate();
        if (!v.Successful) return v;
        if (Model.ToLowerInvariant() is not ("bpr" or "lightgcn")) return ValidationResult.Error($"--model '{Model}' is not bpr or lightgcn");
        if (Dim is < 1) return ValidationResult.Error("--dim must be at least 1");
        if (Layers < 0) return ValidationResult.Error("--layers must be 0 or more");
        if (Threads is < 1) return ValidationResult.Error("--threads must be at least 1");
        try { RecDistill.Runs.KernelChoice.Parse(Kernels); }
        catch (ArgumentException e) { return ValidationResult.Error("--kernels: " + e.Message); }
        if (Adam?.ToLowerInvariant() is not (null or "lazy" or "exact")) return ValidationResult.Error($"--adam '{Adam}' is not lazy or exact");
        if (Device.ToLowerInvariant() is not ("cpu" or "cuda") && !Device.StartsWith("cuda:", StringComparison.OrdinalIgnoreCase))
            return ValidationResult.Error($"--device '{Device}' is not cpu or cuda");
        // The library's own check names its properties; the command names its options.
        if (Epochs < 1) return ValidationResult.Error("--epochs must be at least 1");
        if (EvalEvery < 1) return ValidationResult.Error("--eval-every must be at least 1");
        if (Patience < 1) return ValidationResult.Error("--patience must be at least 1");
        if (!(Lr > 0) || double.IsInfinity(Lr)) return ValidationResult.Error("--lr must be a positive number");
        if (Wd is { } wd && (!(wd >= 0) || double.IsInfinity(wd))) return ValidationResult.Error("--wd must be 0 or a positive number");
        if (BatchSize < 1) return ValidationResult.Error("--batch-size must be at least 1");
        if (Negatives < 1) return ValidationResult.Error("--negatives must be at least 1");
        try { ToTrainOptions().Validate(); }
        catch (ArgumentException e) { return ValidationResult.Error(e.Message); }
        return ValidationResult.Success();
    }

    /// <summary>
    /// Refuses --adam for the students of a LightGCN teacher (distill, tune): train refuses it with --model lightgcn before
    /// reading anything, but a student's backbone is known only once its teacher's record is read.
    /// </summary>
    public void RefuseAdamFor(string command, string teacher, Backbone? teacherBackbone)
    {
        if (Adam is not null && teacherBackbone == Backbone.LightGcn)
            throw new UserErrorException($"{command}: --adam has no effect with teacher {teacher}, a lightgcn model (BPR's row-sparse Adam; " +
                "a LightGCN student trains with dense Adam)");
    }

    /// <summary>
    /// The training options; without --wd, the weight decay of the backbone trained: <paramref name="teacherBackbone"/>
    /// for the commands whose students take their teacher's backbone (distill, tune, compare --teachers), else --model's.
    /// </summary>
    public TrainOptions ToTrainOptions(Backbone? teacherBackbone = null) => new()
    {
        MaxEpochs = Epochs,
        EvalEvery = EvalEvery,
        Patience = Patience,
        LearningRate = Lr,
        WeightDecay = Wd ?? TrainOptions.Defaults(teacherBackbone ?? Backbone).WeightDecay,
        BatchSize = BatchSize,
        NegativesPerPair = Negatives,
        Seed = Seed,
        SparseAdam = Adam?.ToLowerInvariant() == "exact" ? SparseAdamMode.Exact : SparseAdamMode.Lazy,
    };
}

/// <summary>--teacher-dim and --student-dim of demo and compare.</summary>
public static class DimensionOptions
{
    /// <summary>The option out of range, named with its value, or null.</summary>
    public static string? Problem(int teacherDim, int? studentDim) =>
        teacherDim < 1 ? $"--teacher-dim must be at least 1 (not {teacherDim})"
        : studentDim is { } s and < 1 ? $"--student-dim must be at least 1 (not {s})"
        : null;
}

/// <summary>--methods LIST of compare and tune: parsed, and its first problem.</summary>
public static class MethodNames
{
    public const string All = "scratch,kd,rd,cd,de,rrd,htd,nkd,cpd,sld,mkd";

    public static string[] Parse(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(m => m.ToLowerInvariant()).ToArray();

    public static string? Problem(string[] methods)
    {
        if (methods.Length == 0) return "--methods lists no method";
        foreach (var m in methods)
            if (!DistillationMethods.IsKnown(m)) return $"--methods: '{m}' is not one of {string.Join(", ", DistillationMethods.AllNames)}";
        return methods.Distinct().Count() != methods.Length ? "--methods lists a method twice" : null;
    }
}

