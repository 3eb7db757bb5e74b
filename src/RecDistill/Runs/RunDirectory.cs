using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using static TorchSharp.torch;

namespace RecDistill.Runs;

/// <summary>A run's record on disk (run.json): how to rebuild its data and model.</summary>
public sealed record RunRecord(string Command, DataOptions Data, TrainOptions Train, ModelConfig Model, string Created);

/// <summary>A finished run: the model with its best weights, and what it measured.</summary>
public sealed record RunOutcome(IRecommender Model, TrainResult Train, EvaluationResult Valid, EvaluationResult Test);

/// <summary>
/// A run directory: metrics.json (what the run measured), model.bin (best-validation weights),
/// run.json (data and training options, so that evaluation and distillation rebuild the same split),
/// history.csv (per epoch), and while training checkpoint.bin.
/// </summary>
public static class RunDirectory
{
    /// <summary>What the run measured (validation and test metrics, timings); written last.</summary>
    public const string MetricsFile = "metrics.json";
    /// <summary>The run's record (<see cref="RunRecord"/>): command, data and training options, model configuration, creation time.</summary>
    public const string RunFile = "run.json";
    /// <summary>Per epoch: loss, seconds, validation NDCG@20 when validated, and the method's diagnostics.</summary>
    public const string HistoryFile = "history.csv";
    /// <summary>Per-user test metrics (dense user index, then one column per metric), for paired tests between runs.</summary>
    public const string TestUsersFile = "test-users.csv";
    /// <summary>The per-user metrics kept in <see cref="TestUsersFile"/>.</summary>
    public static readonly string[] PerUserMetrics = { "recall@10", "recall@20", "ndcg@10", "ndcg@20" };

    /// <summary>Finished: metrics.json is written last, so its presence means the run completed.</summary>
    public static bool IsFinished(string dir) => File.Exists(Path.Combine(dir, MetricsFile));

    /// <summary>
    /// Refuses a finished run that is a distilled student (its metrics.json names its method and teacher) where a
    /// teacher is asked for: a comparison's or a search's students would then learn from a student.
    /// </summary>
    internal static void CheckIsTeacher(string dir)
    {
        if (JsonNode.Parse(File.ReadAllText(Path.Combine(dir, MetricsFile)))?["distillation"] is JsonObject student)
            throw new UserErrorException($"teacher {dir} is a distilled student ({student["method"]?.GetValue<string>() ?? "a method"} of " +
                $"{student["teacher"]?.GetValue<string>() ?? "a teacher"}), not a teacher: give runs written by train (or a comparison's teacher)");
    }

    /// <summary>
    /// True when the run was trained without its split's test set (a search's trial, distill --no-test): its metrics.json
    /// counts no test interactions. A run whose data has no test at all reads the same, and has none to hold out.
    /// </summary>
    public static bool TrainedWithoutTest(string dir)
    {
        var path = Path.Combine(dir, MetricsFile);
        return File.Exists(path) && JsonNode.Parse(File.ReadAllText(path))?["dataset"]?["test"]?.GetValue<long>() == 0;
    }

    /// <summary>Path of the run's model file (best-validation weights).</summary>
    public static string ModelPath(string dir) => Path.Combine(dir, ModelFile.FileName);

    /// <summary>
    /// The SHA-256 of the run's model.bin (lower-case hex): what identifies a teacher beyond its path, so that a
    /// teacher retrained in the same directory continues no search or student of the one it replaced.
    /// </summary>
    internal static string ModelSha256(string dir)
    {
        var path = ModelPath(dir);
        if (!File.Exists(path)) throw new DataFormatException(path, 0, "model file does not exist");
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

    /// <summary>Path of the run's checkpoint, present while training (for resume).</summary>
    public static string CheckpointPath(string dir) => Path.Combine(dir, TrainingCheckpoint.FileName);

    /// <summary>Refuses to mix a new run's results with an old one's unless overwriting is asked for.</summary>
    public static void PrepareOut(string dir, bool overwrite)
    {
        CheckOut(dir, overwrite);
        Directory.CreateDirectory(dir);
    }

    /// <summary>Deletes a run's results, metrics.json (the mark of a finished run) first.</summary>
    internal static void ClearResults(string dir)
    {
        foreach (var path in new[] { Path.Combine(dir, MetricsFile), Path.Combine(dir, RunFile), Path.Combine(dir, HistoryFile),
                     Path.Combine(dir, TestUsersFile), ModelPath(dir), CheckpointPath(dir) })
            File.Delete(path);
    }

    /// <summary>What <see cref="PrepareOut"/> refuses, without making the directory.</summary>
    internal static void CheckOut(string dir, bool overwrite)
    {
        if (File.Exists(dir)) throw new UserErrorException($"{dir} is a file, not a directory: a run is written into a directory");
        if (Directory.Exists(dir) && !overwrite &&
            (File.Exists(Path.Combine(dir, MetricsFile)) || File.Exists(ModelPath(dir))))
            throw new UserErrorException($"{dir} already holds a run; choose another directory or overwrite it (--overwrite; RunOutput.Overwrite)");
    }

    /// <summary>
    /// The data options a run was trained with. Earlier builds recorded the path as typed: a relative one that is
    /// not found from the current directory is refused with what it was, not reported as a missing file.
    /// </summary>
    internal static DataOptions RecordedData(string dir, RunRecord record)
    {
        var path = record.Data.Path;
        if (path is not null && !Path.IsPathRooted(path) && !File.Exists(path) && !Directory.Exists(path))
            throw new UserErrorException($"{Path.Combine(dir, RunFile)} names its data by the relative path '{path}' (a record of an earlier build), " +
                $"which is not found from {Environment.CurrentDirectory}: give the data (--data), or work from the directory the run was trained in");
        return record.Data;
    }

    /// <summary>Reads the run's record; a missing or unreadable one is a <see cref="UserErrorException"/>.</summary>
    public static RunRecord ReadRecord(string dir)
    {
        var path = Path.Combine(dir, RunFile);
        if (!Directory.Exists(dir)) throw new UserErrorException(File.Exists(dir) ? $"{dir} is a file, not a run directory" : $"{dir}: no such run directory");
        // A run stopped before it finished has its checkpoint and no record yet: say how to finish it.
        if (!File.Exists(path) && File.Exists(CheckpointPath(dir)))
            throw new UserErrorException($"{dir} is an unfinished run ({TrainingCheckpoint.FileName}, no {RunFile} yet): finish it first " +
                $"(train or distill --resume {dir}; RunOutput.Resume)");
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

    /// <summary>The data a run's record describes (or <paramref name="dataOverride"/>) and its model with the saved weights.</summary>
    /// <remarks>
    /// The model holds TorchSharp tensors (native memory the garbage collector does not see): dispose it
    /// (<c>using var model = ...</c>) when done. For serving without TorchSharp, export the run
    /// (<see cref="ModelExport"/>) and load the file with RecDistill.Serving.
    /// </remarks>
    public static (RunRecord Record, DataOptions DataOptions, SplitDataset Data, IRecommender Model) Load(
        string dir, ComputeOptions compute, DataOptions? dataOverride = null, IRunReporter? reporter = null)
    {
        var record = ReadRecord(dir);
        // A bad thread count, device or data override is refused before the data loads, not after.
        compute.Validate();
        dataOverride?.Validate();
        var dataOptions = dataOverride ?? RecordedData(dir, record);
        var data = Workflow.LoadData(dataOptions, reporter ?? SilentReporter.Instance);
        if (dataOverride is not null) CheckSameIds(dir, data, dataOverride);
        var model = ModelFile.Load(ModelPath(dir), data, compute.Resolve());
        return (record, dataOptions, data, model);
    }

    /// <summary>A fingerprint of a dataset's user and item ids in dense order (the rows of a model trained on it).</summary>
    internal static string IdsHash(SplitDataset data)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var ids in new[] { data.UserIds, data.ItemIds })
        {
            foreach (var id in ids) sha.AppendData(Encoding.UTF8.GetBytes(id + "\n"));
            sha.AppendData("\0\n"u8); // ids hold no control characters: the two lists cannot run into each other
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// Refuses other data for a run (--data) whose user or item ids differ from those it was trained on: a model's
    /// rows are its ids', and the same counts alone would pair every vector with another user or item. Runs of
    /// earlier builds, whose metrics.json has no fingerprint, are checked on the counts only (by the model file).
    /// </summary>
    internal static void CheckSameIds(string dir, SplitDataset data, DataOptions given)
    {
        var recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, MetricsFile)))?["dataset"]?["ids_sha256"]?.GetValue<string>();
        if (recorded is not null && recorded != IdsHash(data))
            throw new UserErrorException($"{given.Path ?? "the data given"} holds other user or item ids than {dir} was trained on " +
                $"({data.NumUsers:N0} users and {data.NumItems:N0} items here): a model's rows belong to its own ids, so give the data it was trained on");
    }

    /// <summary>metrics.json's content: dataset sizes, model, seed, training summary, validation and test metrics.</summary>
    public static JsonObject MetricsJson(SplitDataset data, IRecommender model, TrainResult? train,
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
                ["ids_sha256"] = IdsHash(data),
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
        if (train is not null)
        {
            o["best_epoch"] = train.BestEpoch;
            o["epochs_run"] = train.EpochsRun;
            o["early_stopped"] = train.EarlyStopped;
            o["train_seconds"] = Math.Round(train.TrainSeconds, 2);
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

    /// <summary>Writes a finished run: metrics.json (with <paramref name="extra"/> and the command line), run.json, history.csv, model.bin.</summary>
    public static void Write(string dir, string command, string commandLine, DataOptions dataOptions, TrainOptions train,
        SplitDataset data, RunOutcome run, JsonObject? extra = null)
    {
        // The data path made absolute: evaluate, export and distill read it back from any working directory, and a
        // relative one would silently name another file there (or none).
        var record = new RunRecord(command, dataOptions.WithFullPath(), train, ModelFile.ConfigOf(run.Model),
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
        if (run.Test.EvaluatedUsers.Count > 0) WriteTestUsers(dir, run.Test);
        // The trainer saved the best model while training; save again so the file matches the final weights.
        ModelFile.Save(ModelPath(dir), run.Model);
        // metrics.json goes last: its presence marks the run finished.
        var metrics = MetricsJson(data, run.Model, run.Train, run.Valid, run.Test, train.Seed);
        if (extra is not null) foreach (var (k, v) in extra) metrics[k] = v?.DeepClone();
        metrics["command"] = commandLine;
        AtomicFile.WriteText(Path.Combine(dir, MetricsFile), metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        // The run is complete: its resume state is no longer needed (and is as large as the model, or more).
        File.Delete(CheckpointPath(dir));
    }

    /// <summary>Writes <see cref="TestUsersFile"/>: one line per evaluated user, metrics rounded to 6 decimals.</summary>
    public static void WriteTestUsers(string dir, EvaluationResult test)
    {
        var csv = new StringBuilder("user_index," + string.Join(",", PerUserMetrics) + "\n");
        for (int r = 0; r < test.EvaluatedUsers.Count; r++)
        {
            csv.Append(test.EvaluatedUsers[r].ToString(CultureInfo.InvariantCulture));
            foreach (var k in PerUserMetrics) csv.Append(',').Append(test.PerUser[k][r].ToString("0.######", CultureInfo.InvariantCulture));
            csv.Append('\n');
        }
        AtomicFile.WriteText(Path.Combine(dir, TestUsersFile), csv.ToString());
    }

    /// <summary>Reads <see cref="TestUsersFile"/>: dense user indices and one metric's values, or null when the run has none.</summary>
    public static (int[] Users, double[] Values)? ReadTestUsers(string dir, string metric)
    {
        var path = Path.Combine(dir, TestUsersFile);
        if (!File.Exists(path)) return null;
        using var reader = new StreamReader(path);
        var header = (reader.ReadLine() ?? "").Split(',');
        int col = Array.IndexOf(header, metric);
        if (col < 1) throw new UserErrorException($"{path}:1: no column '{metric}' (has {string.Join(", ", header.Skip(1))})");
        var users = new List<int>();
        var values = new List<double>();
        int lineNo = 1;
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            lineNo++;
            var f = line.Split(',');
            if (f.Length != header.Length || !int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var u)
                || !double.TryParse(f[col], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new UserErrorException($"{path}:{lineNo}: expected {header.Length} fields: a user index and numbers");
            users.Add(u);
            values.Add(v);
        }
        return (users.ToArray(), values.ToArray());
    }
}
