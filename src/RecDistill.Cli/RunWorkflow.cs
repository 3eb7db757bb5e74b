using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Cli.Commands;
using RecDistill.Data;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Cli;

/// <summary>A finished run: the model with its best weights, and what it measured.</summary>
public sealed record RunOutcome(IRecommender Model, TrainResult Train, EvaluationResult Valid, EvaluationResult Test);

/// <summary>A run's record on disk: how to rebuild its data and model.</summary>
public sealed record RunRecord(string Command, DataOptions Data, TrainOptions Train, ModelConfig Model, string Created);

/// <summary>Steps shared by the commands: set up torch, load data, train with a progress bar, write results.</summary>
public static class RunWorkflow
{
    public const string MetricsFile = "metrics.json";
    public const string RunFile = "run.json";
    public const string HistoryFile = "history.csv";

    public static Device SetupTorch(string device, int? threads)
    {
        AllocatorTuning.KeepFreedMemory();
        try
        {
            torch.set_num_threads(threads ?? Environment.ProcessorCount);
        }
        catch (TypeInitializationException e) when (e.TypeName == typeof(torch).FullName)
        {
            throw new UserErrorException(LibTorchNotLoaded(e.InnerException ?? e));
        }
        var d = device.ToLowerInvariant();
        if (d.StartsWith("cuda") && !torch.cuda.is_available())
            throw new UserErrorException("--device cuda: no CUDA device is available to this build. Reference a CUDA build of libtorch instead of libtorch-cpu-linux-x64, or build with -p:LibTorch=external and put a CUDA libtorch (an installed PyTorch's torch/lib) on LD_LIBRARY_PATH (docs/torchsharp.md); and check the driver.");
        return torch.device(d);
    }

    /// <summary>Why libtorch did not load, and what to do, for this build's choice of libtorch (-p:LibTorch=cpu|external).</summary>
    public static string LibTorchNotLoaded(Exception cause)
    {
        string choice = typeof(Sgemm).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "RecDistill.LibTorch")?.Value ?? "cpu";
        string reason = cause.Message.Split('\n', 2)[0].Trim();
        return choice == "external"
            ? $"libtorch could not be loaded ({reason}). This build leaves libtorch out (-p:LibTorch=external): put the folder " +
              "that holds libtorch_cpu.so on LD_LIBRARY_PATH, for a GPU an installed PyTorch's torch/lib and its nvidia/*/lib " +
              "folders (docs/torchsharp.md)."
            : $"libtorch could not be loaded ({reason}). Rebuild so that the libtorch-cpu-linux-x64 package's files are in the " +
              "output directory (docs/torchsharp.md).";
    }

    public static SplitDataset LoadData(DataOptions options)
    {
        SplitDataset data = null!;
        AnsiConsole.Status().Start($"Loading {Describe(options)}", _ => data = DatasetLoader.Load(options));
        return data;
    }

    public static string Describe(DataOptions o) =>
        o.Format == DataFormat.Synthetic ? $"synthetic data (seed {o.Seed})" : $"{o.Path} ({o.Format.ToString().ToLowerInvariant()})";

    /// <summary>
    /// Prepares a train/distill run directory: refuses an old run's directory (unless overwriting or
    /// resuming it) and records the arguments a resume needs. Returns the resume-state path and
    /// whether this run continues an interrupted one.
    /// </summary>
    public static (string StatePath, bool Resume) PrepareRunDir(string dir, bool overwrite, string command)
    {
        bool resume = ResumableRun.Directory is not null;
        if (resume && !File.Exists(Path.Combine(dir, TrainingCheckpoint.FileName)))
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(dir)} has no checkpoint yet: the run starts from its first epoch[/]");
        PrepareOutDir(dir, overwrite || resume);
        if (!resume) ResumableRun.Record(dir, command, CliApp.Args);
        else AnsiConsole.MarkupLine($"[grey]resuming {Markup.Escape(dir)}[/]");
        return (Path.Combine(dir, TrainingCheckpoint.FileName), resume);
    }

    /// <summary>Refuses to mix a new run's results with an old one's unless overwriting is asked for.</summary>
    public static void PrepareOutDir(string dir, bool overwrite)
    {
        if (File.Exists(dir)) throw new UserErrorException($"--out {dir} is a file, not a directory");
        if (Directory.Exists(dir) && !overwrite &&
            (File.Exists(Path.Combine(dir, MetricsFile)) || File.Exists(Path.Combine(dir, ModelFile.FileName))))
            throw new UserErrorException($"--out {dir} already holds a run; choose another directory or pass --overwrite");
        Directory.CreateDirectory(dir);
    }

    /// <summary>A new model whose initial weights depend on the seed only (not on what ran before it).</summary>
    public static IRecommender CreateModel(Backbone backbone, int dim, int layers, SplitDataset data, Device device, int seed)
    {
        torch.manual_seed(seed);
        return ModelFile.Create(new ModelConfig(backbone, dim, layers, data.NumUsers, data.NumItems), data, device);
    }

    /// <summary>Trains with a live progress bar (epoch, loss, last validation metrics, ETA) and evaluates the best weights.</summary>
    public static RunOutcome TrainAndEvaluate(string label, IRecommender model, SplitDataset data, TrainOptions options,
        string? checkpointPath, Distillation.IDistillationMethod? method = null, string? statePath = null, bool resume = false)
    {
        TrainResult result = null!;
        bool live = AnsiConsole.Profile.Capabilities.Interactive;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: options.MaxEpochs);
                var trainer = new Trainer(options)
                {
                    CheckpointPath = checkpointPath,
                    StatePath = statePath,
                    Resume = resume,
                    Progress = p =>
                    {
                        task.Value = p.Epoch - 1 + (double)p.Batch / p.Batches;
                        task.Description = Markup.Escape(
                            $"{label} epoch {p.Epoch}/{p.MaxEpochs} loss {p.EpochLoss:F4}" +
                            (p.LastValid is null ? "" : $" valid ndcg@20 {p.LastValid.GetValueOrDefault("ndcg@20"):F4} (best {p.BestValid:F4} @{p.BestEpoch})"));
                        if (!live && p.AfterValidation && p.LastValid is not null)
                        {
                            Console.Error.WriteLine($"{label}: epoch {p.Epoch} loss {p.EpochLoss:F4} valid ndcg@20 {p.LastValid.GetValueOrDefault("ndcg@20"):F4} recall@20 {p.LastValid.GetValueOrDefault("recall@20"):F4} best {p.BestValid:F4} @{p.BestEpoch} [{p.Elapsed:hh\\:mm\\:ss}]");
                        }
                    },
                };
                result = trainer.Fit(model, data, method);
                task.Value = options.MaxEpochs;
                task.Description = Markup.Escape($"{label} done: best epoch {result.BestEpoch}, {result.EpochsRun} epochs" +
                    (result.EarlyStopped ? " (early stop)" : ""));
            });
        var evaluator = new FullRankingEvaluator(data);
        var valid = evaluator.Evaluate(model, EvalSplit.Valid);
        var test = evaluator.Evaluate(model, EvalSplit.Test);
        return new RunOutcome(model, result, valid, test);
    }

    public static JsonObject MetricsJson(SplitDataset data, IRecommender model, RunOutcome? run,
        EvaluationResult valid, EvaluationResult test, int seed)
    {
        var o = new JsonObject
        {
            ["dataset"] = new JsonObject
            {
                ["name"] = data.Name,
                ["users"] = data.NumUsers,
                ["items"] = data.NumItems,
                ["train"] = data.TrainCount,
                ["valid"] = data.ValidCount,
                ["test"] = data.TestCount,
            },
            ["model"] = new JsonObject
            {
                ["backbone"] = model.Backbone == Backbone.Bpr ? "bpr" : "lightgcn",
                ["dim"] = model.Dim,
                ["layers"] = model is LightGcn g ? g.Layers : 0,
                ["parameters"] = model.ParameterCount,
            },
            ["seed"] = seed,
        };
        if (run is not null)
        {
            o["best_epoch"] = run.Train.BestEpoch;
            o["epochs_run"] = run.Train.EpochsRun;
            o["early_stopped"] = run.Train.EarlyStopped;
            o["train_seconds"] = Math.Round(run.Train.TrainSeconds, 2);
        }
        o["valid"] = MetricsObject(valid);
        o["test"] = MetricsObject(test);
        return o;
    }

    private static JsonObject MetricsObject(EvaluationResult r)
    {
        var o = new JsonObject { ["users"] = r.Users };
        foreach (var (k, v) in r.Metrics) o[k] = Math.Round(v, 6);
        return o;
    }

    public static void WriteRun(string dir, string command, DataOptions dataOptions, TrainOptions train,
        SplitDataset data, RunOutcome run, JsonObject? extra = null)
    {
        var metrics = MetricsJson(data, run.Model, run, run.Valid, run.Test, train.Seed);
        if (extra is not null) foreach (var (k, v) in extra) metrics[k] = v?.DeepClone();
        metrics["command"] = CliApp.CommandLine.Length > 0 ? CliApp.CommandLine : command;
        AtomicFile.WriteText(Path.Combine(dir, MetricsFile), metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var record = new RunRecord(command, dataOptions, train, ModelFile.ConfigOf(run.Model),
            DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
        AtomicFile.WriteText(Path.Combine(dir, RunFile), JsonSerializer.Serialize(record, JsonOptions.Default));
        // Methods' per-epoch diagnostics (e.g. CPD's inconsistency rate) become extra columns.
        var diagKeys = run.Train.History.SelectMany(h => h.Diagnostics?.Keys ?? Enumerable.Empty<string>()).Distinct().Order().ToList();
        var csv = new StringBuilder("epoch,loss,seconds,valid_ndcg20" + string.Concat(diagKeys.Select(k => "," + k)) + "\n");
        string G(double? v) => v is { } x ? x.ToString("G6", CultureInfo.InvariantCulture) : "";
        foreach (var h in run.Train.History)
            csv.Append(CultureInfo.InvariantCulture, $"{h.Epoch},{h.Loss:G6},{h.Seconds:F3},{G(h.ValidMetric)}")
               .Append(string.Concat(diagKeys.Select(k => "," + G(h.Diagnostics?.GetValueOrDefault(k)))))
               .Append('\n');
        AtomicFile.WriteText(Path.Combine(dir, HistoryFile), csv.ToString());
        // The trainer saved the best model while training; save again so the file matches the final weights.
        ModelFile.Save(Path.Combine(dir, ModelFile.FileName), run.Model);
        // The run is complete: its resume state is no longer needed (and is as large as the model, or more).
        File.Delete(Path.Combine(dir, TrainingCheckpoint.FileName));
    }

    /// <summary>
    /// A saved run's data and model: the run's own data options rebuild the exact split it was
    /// trained on, unless <paramref name="dataOverride"/> says otherwise.
    /// </summary>
    public static (RunRecord Record, DataOptions DataOptions, SplitDataset Data, IRecommender Model) LoadRun(
        string dir, Device device, DataOptions? dataOverride = null)
    {
        var record = ReadRunRecord(dir);
        var dataOptions = dataOverride ?? record.Data;
        var data = LoadData(dataOptions);
        var model = ModelFile.Load(Path.Combine(dir, ModelFile.FileName), data, device);
        return (record, dataOptions, data, model);
    }

    public static RunRecord ReadRunRecord(string dir)
    {
        var path = Path.Combine(dir, RunFile);
        if (!File.Exists(path)) throw new UserErrorException($"{dir} is not a run directory: {RunFile} is missing");
        try
        {
            return JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(path), JsonOptions.Default)
                   ?? throw new UserErrorException($"{path}: empty run record");
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{path}: not a valid run record ({e.Message})");
        }
    }

    /// <summary>A table of Recall/NDCG/Precision/Hit at 10/20/50 for several named results.</summary>
    public static Table MetricsTable(string title, IEnumerable<(string Name, string Size, EvaluationResult Result)> rows)
    {
        var cols = new[] { "recall@10", "recall@20", "ndcg@10", "ndcg@20", "recall@50", "ndcg@50", "hit@20" };
        var t = new Table().Title(title).Border(TableBorder.Rounded);
        t.AddColumn("model");
        t.AddColumn(new TableColumn("params").RightAligned());
        foreach (var c in cols) t.AddColumn(new TableColumn(c).RightAligned());
        foreach (var (name, size, r) in rows)
            t.AddRow(new[] { Markup.Escape(name), size }.Concat(cols.Select(c => r.Metrics.TryGetValue(c, out var v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "-")).ToArray());
        return t;
    }

    public static string FormatCount(long n) => n >= 1_000_000 ? $"{n / 1e6:F2}M" : n >= 1_000 ? $"{n / 1e3:F1}k" : n.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A mistake in what the user asked for: printed as one clear line, exit code 2.</summary>
public sealed class UserErrorException(string message) : Exception(message);
