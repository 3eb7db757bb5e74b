using System.Text;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;

namespace RecDistill.Runs;

/// <summary>One searched setting: its name, range, and whether it is drawn on a log scale.</summary>
public sealed record SearchDimension(string Name, double Low, double High, bool Log);

/// <summary>A method's settings for one trial: the student's weight decay and the method's searched parameters.</summary>
public sealed record TrialConfig(string Method, double WeightDecay, IReadOnlyDictionary<string, double> Parameters);

/// <summary>
/// A finished trial: its settings and what it reached on validation (test is never seen). A trial whose training
/// diverged has a <see cref="Failure"/>, a <see cref="ValidNdcg20"/> of -1 (below every real score) and is never chosen.
/// </summary>
public sealed record TrialRecord(int Trial, TrialConfig Config, double ValidNdcg20, int BestEpoch, int EpochsRun, double TrainSeconds)
{
    /// <summary>Why the trial failed ("training diverged: ..."), or null for a trial that ran to its end.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Failure { get; init; }
}

/// <summary>A tuned method: the trial with the best validation NDCG@20 (the earliest of equals), as compare reads it.</summary>
public sealed record TunedConfig(string Method, TrialConfig Config, int Trial, double ValidNdcg20, int Trials, int Seed,
    string Teacher, string Created);

/// <summary>
/// A validation-only random search with the same budget for every method: the same number of trials, the
/// same epochs and early stopping, trial 0 the method's defaults and the others drawn from the ranges of
/// <see cref="SpaceOf"/> by a generator seeded with (seed, trial). The split handed to the trials has no
/// test set. Each trial is a run directory under DIR/METHOD/trial-K (resumed from its checkpoint when
/// interrupted) and a record DIR/METHOD/trial-K.json; the choice is DIR/METHOD.json. Several processes can
/// run one search together: each takes the trials no other holds (a lock file per trial). A cancelled
/// search stops between trials or inside one (which keeps its checkpoint); the next call continues it.
/// </summary>
public static class Tuning
{
    /// <summary>Name of the weight decay dimension, searched for every method.</summary>
    public const string WeightDecay = "weight_decay";

    /// <summary>The searched ranges of a method (docs/distillation.md lists them).</summary>
    public static IReadOnlyList<SearchDimension> SpaceOf(string method)
    {
        var d = new DistillationOptions();
        SearchDimension Lambda(string name, double byDefault) => new(name, byDefault / 10, byDefault * 10, Log: true);
        var space = new List<SearchDimension> { new(WeightDecay, 1e-8, 1e-3, Log: true) };
        space.AddRange(method.ToLowerInvariant() switch
        {
            "scratch" => [],
            "kd" => [Lambda("lambda", d.Kd.Lambda), new("tau", 0.5, 5, Log: true)],
            "rd" => [Lambda("lambda", d.Rd.Lambda), new("t", 1, 20, Log: true)],
            "cd" => [Lambda("lambda", d.Cd.Lambda), new("t1", 0.5, 5, Log: true)],
            "de" => [Lambda("lambda", d.De.Lambda)],
            "rrd" => [Lambda("lambda", d.Rrd.Lambda), new("t", 2, 50, Log: true)],
            "htd" => [Lambda("lambda", d.Htd.Lambda), new("alpha", 0.1, 0.9, Log: false)],
            "nkd" => [Lambda("lambda", d.Nkd.Lambda), new("alpha", 0.1, 0.9, Log: false)],
            "cpd" => [Lambda("lambda", d.Cpd.Lambda), new("alpha_c", 0.01, 1, Log: true)],
            "sld" => [Lambda("lambda", d.Sld.Lambda), new("beta", 0.5, 10, Log: true)],
            var m when DistillationMethods.MkdParts(m) is { } parts => parts.Select(part => part switch
            {
                "nkd" => Lambda("lambda_nkd", d.Nkd.Lambda),
                "cpd" => Lambda("lambda_cpd", d.Cpd.Lambda),
                _ => Lambda("lambda_sld", d.Sld.Lambda),
            }),
            _ => throw new UserErrorException($"'{method}' is not one of {string.Join(", ", DistillationMethods.AllNames)}"),
        });
        return space;
    }

    /// <summary>Trial 0: the defaults (weight decay <paramref name="defaultDecay"/>); trial k: a draw seeded by (seed, k) alone.</summary>
    public static TrialConfig Draw(string method, Backbone backbone, double defaultDecay, int seed, int trial)
    {
        method = method.ToLowerInvariant();
        var space = SpaceOf(method);
        var values = new Dictionary<string, double>();
        if (trial == 0)
        {
            var defaults = Read(DistillationOptions.Defaults(method, backbone));
            foreach (var dim in space.Skip(1)) values[dim.Name] = defaults[dim.Name];
            return new TrialConfig(method, defaultDecay, values);
        }
        var rng = new Random(unchecked(seed * 1_000_003 + trial)); // the same draws in every process
        double decay = 0;
        foreach (var dim in space)
        {
            double u = rng.NextDouble();
            double v = dim.Log ? Math.Exp(Math.Log(dim.Low) + u * (Math.Log(dim.High) - Math.Log(dim.Low))) : dim.Low + u * (dim.High - dim.Low);
            v = double.Parse(v.ToString("G4", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture); // readable records
            if (dim.Name == WeightDecay) decay = v; else values[dim.Name] = v;
        }
        return new TrialConfig(method, decay, values);
    }

    /// <summary>The method's options with a trial's parameters set.</summary>
    public static DistillationOptions Apply(TrialConfig c, Backbone backbone)
    {
        var d = DistillationOptions.Defaults(c.Method, backbone);
        double P(string name, double current) => c.Parameters.TryGetValue(name, out var v) ? v : current;
        return c.Method switch
        {
            "kd" => d with { Kd = d.Kd with { Lambda = P("lambda", d.Kd.Lambda), Tau = P("tau", d.Kd.Tau) } },
            "rd" => d with { Rd = d.Rd with { Lambda = P("lambda", d.Rd.Lambda), T = P("t", d.Rd.T) } },
            "cd" => d with { Cd = d.Cd with { Lambda = P("lambda", d.Cd.Lambda), T1 = P("t1", d.Cd.T1) } },
            "de" => d with { De = d.De with { Lambda = P("lambda", d.De.Lambda) } },
            "rrd" => d with { Rrd = d.Rrd with { Lambda = P("lambda", d.Rrd.Lambda), T = P("t", d.Rrd.T) } },
            "htd" => d with { Htd = d.Htd with { Lambda = P("lambda", d.Htd.Lambda), Alpha = P("alpha", d.Htd.Alpha) } },
            "nkd" => d with { Nkd = d.Nkd with { Lambda = P("lambda", d.Nkd.Lambda), Alpha = P("alpha", d.Nkd.Alpha) } },
            "cpd" => d with { Cpd = d.Cpd with { Lambda = P("lambda", d.Cpd.Lambda), AlphaC = P("alpha_c", d.Cpd.AlphaC) } },
            "sld" => d with { Sld = d.Sld with { Lambda = P("lambda", d.Sld.Lambda), Beta = P("beta", d.Sld.Beta) } },
            var m when DistillationMethods.MkdParts(m) is not null => d with
            {
                Nkd = d.Nkd with { Lambda = P("lambda_nkd", d.Nkd.Lambda) },
                Cpd = d.Cpd with { Lambda = P("lambda_cpd", d.Cpd.Lambda) },
                Sld = d.Sld with { Lambda = P("lambda_sld", d.Sld.Lambda) },
            },
            _ => d,
        };
    }

    /// <summary>The searched parameters' values in a method's options (what trial 0 uses).</summary>
    private static Dictionary<string, double> Read(DistillationOptions d) => new()
    {
        ["lambda"] = d.Method switch
        {
            "kd" => d.Kd.Lambda, "rd" => d.Rd.Lambda, "cd" => d.Cd.Lambda, "de" => d.De.Lambda, "rrd" => d.Rrd.Lambda,
            "htd" => d.Htd.Lambda, "nkd" => d.Nkd.Lambda, "cpd" => d.Cpd.Lambda, "sld" => d.Sld.Lambda, _ => 0,
        },
        ["tau"] = d.Kd.Tau, ["t"] = d.Method == "rd" ? d.Rd.T : d.Rrd.T, ["t1"] = d.Cd.T1,
        ["alpha"] = d.Method == "htd" ? d.Htd.Alpha : d.Nkd.Alpha, ["alpha_c"] = d.Cpd.AlphaC, ["beta"] = d.Sld.Beta,
        ["lambda_nkd"] = d.Nkd.Lambda, ["lambda_cpd"] = d.Cpd.Lambda, ["lambda_sld"] = d.Sld.Lambda,
    };

    /// <summary>The same split without its test set: what every trial sees.</summary>
    public static SplitDataset WithoutTest(SplitDataset d) => new()
    {
        Name = d.Name, UserIds = d.UserIds, ItemIds = d.ItemIds, Train = d.Train, Valid = d.Valid,
        Test = d.Test.Select(_ => Array.Empty<int>()).ToArray(), Log = d.Log,
    };

    /// <summary>
    /// Tunes each method in turn against the teacher of <paramref name="teacherDir"/>; finished trials are kept.
    /// <paramref name="cancellationToken"/> stops the search between trials or inside one (which keeps its
    /// checkpoint) with <see cref="OperationCanceledException"/>; the next call continues it.
    /// </summary>
    public static IReadOnlyList<TunedConfig> Tune(string teacherDir, IReadOnlyList<string> methods, TrainOptions train, int trials,
        string outDir, int? studentDim = null, ComputeOptions? compute = null, IRunReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        // One workflow at a time in the process (Workflow's remarks); its runs take the lock again.
        using var runLock = Workflow.RunLock.EnterScope();
        cancellationToken.ThrowIfCancellationRequested();
        if (trials < 1) throw new UserErrorException($"a search needs at least 1 trial per method (not {trials})");
        reporter ??= SilentReporter.Instance;
        // Everything that can be checked is checked before anything is written: a call that fails here must not
        // leave a search.json behind, which would refuse the next, correct call as "a search with other settings".
        // No method would still record the search's settings in OUT/search.json and return nothing.
        if (methods.Count == 0) throw new ArgumentException("a search needs at least one method", nameof(methods));
        var methodList = methods.Select(m => m.ToLowerInvariant()).ToList();
        foreach (var m in methodList) SpaceOf(m); // an unknown method
        if (File.Exists(outDir)) throw new UserErrorException($"{outDir} is a file, not a search directory");
        train.Validate();
        var teacherRecord = RunDirectory.ReadRecord(teacherDir);
        RunDirectory.CheckIsTeacher(teacherDir);
        var shape = new ModelShape(teacherRecord.Model.Backbone, TeacherSession.StudentDimOf(studentDim, teacherRecord.Model.Dim), teacherRecord.Model.Layers);
        shape.Validate();
        var wanted = SearchSettings(teacherDir, shape.Dim, train, trials, RunDirectory.ModelSha256(teacherDir));
        CheckSearch(outDir, wanted, write: false);
        // Opening the session reads the teacher's data and model.bin: a teacher that cannot be loaded stops here.
        using var session = TeacherSession.Open(teacherDir, compute, null, studentDim, reporter, withoutTest: true);
        if (session.Data.TestCount != 0) throw new InvalidOperationException("tuning must not see a test set");
        CheckSearch(outDir, wanted, write: true); // again: another process may have begun the search meanwhile
        var result = new List<TunedConfig>();
        var allFailed = new List<string>();
        foreach (var method in methodList)
        {
            var records = new List<TrialRecord>();
            int elsewhere = 0;
            for (int k = 0; k < trials; k++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var recordPath = TrialRecordPath(outDir, method, k);
                if (File.Exists(recordPath))
                {
                    records.Add(ReadJson<TrialRecord>(recordPath));
                    continue;
                }
                using var claim = RunClaim.TryTake(Path.Combine(outDir, method, $"trial-{k}.lock"));
                if (claim is null)
                {
                    reporter.Message($"{method} trial {k} ({k + 1} of {trials}) is running in another process: skipped here");
                    elsewhere++;
                    continue;
                }
                // Another process may have finished the trial between the check above and the claim.
                if (File.Exists(recordPath))
                {
                    records.Add(ReadJson<TrialRecord>(recordPath));
                    claim.Release();
                    continue;
                }
                var config = Draw(method, session.Backbone, train.WeightDecay, train.Seed, k);
                var dir = Path.Combine(outDir, method, $"trial-{k}");
                reporter.Message($"{method} trial {k} ({k + 1} of {trials}): weight decay {config.WeightDecay:G3}" +
                    string.Concat(config.Parameters.Select(p => $", {p.Key} {p.Value:G4}")) + Remaining(outDir, method, trials));
                var output = new RunOutput(dir) { Overwrite = true, Resume = File.Exists(RunDirectory.CheckpointPath(dir)), Command = "tune" };
                TrialRecord record;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    var run = session.Distill(method, train with { WeightDecay = config.WeightDecay }, Apply(config, session.Backbone), output, cancellationToken);
                    record = new TrialRecord(k, config, run.Valid["ndcg@20"], run.Train.BestEpoch, run.Train.EpochsRun, Math.Round(run.Train.TrainSeconds, 1));
                }
                catch (TrainingDivergedException e)
                {
                    // A diverging trial is an outcome of its settings, not a fault of the search: it is recorded as
                    // failed (so that the next call does not run it again), never chosen, and the search goes on.
                    record = new TrialRecord(k, config, FailedScore, 0, 0, Math.Round(clock.Elapsed.TotalSeconds, 1))
                        { Failure = $"training diverged: {e.Message}" };
                    reporter.Message($"{method} trial {k} failed, recorded as such: {record.Failure}");
                }
                AtomicFile.WriteText(recordPath, JsonSerializer.Serialize(record, JsonOptions.Default));
                records.Add(record);
                claim.Release();
            }
            // Trials run by other processes may have ended meanwhile; the process that records the last one chooses.
            if (elsewhere > 0)
            {
                records = FinishedTrials(outDir, method, trials);
                if (records.Count < trials)
                {
                    reporter.Message($"{method}: {trials - records.Count} of {trials} trials still run elsewhere; the process that ends the last one writes {method}.json");
                    WriteReport(outDir);
                    continue;
                }
            }
            var best = records.Where(r => r.Failure is null).OrderByDescending(r => r.ValidNdcg20).ThenBy(r => r.Trial).FirstOrDefault();
            if (best is null)
            {
                reporter.Message($"{method}: every trial failed ({trials} of {trials}): no choice, no {method}.json");
                allFailed.Add(method);
                WriteReport(outDir);
                continue;
            }
            var tuned = new TunedConfig(method, best.Config, best.Trial, best.ValidNdcg20, trials, train.Seed,
                Path.GetFullPath(teacherDir), DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
            // A repeated call that chooses the same keeps the record as it is (its creation time included).
            var existing = ReadTuned(outDir, method);
            if (existing is not null && JsonSerializer.Serialize(existing with { Created = "" }, JsonOptions.Default) == JsonSerializer.Serialize(tuned with { Created = "" }, JsonOptions.Default))
                tuned = existing;
            else
                AtomicFile.WriteText(Path.Combine(outDir, method + ".json"), JsonSerializer.Serialize(tuned, JsonOptions.Default));
            reporter.Message($"{method}: trial {best.Trial} chosen (valid ndcg@20 {best.ValidNdcg20:F4})");
            result.Add(tuned);
            WriteReport(outDir);
        }
        if (allFailed.Count > 0)
            throw new TrainingDivergedException($"every trial of {string.Join(", ", allFailed)} failed (see {Path.Combine(outDir, "trials.md")}): " +
                (allFailed.Count == 1 ? "it has" : "they have") + " no choice and no METHOD.json" +
                (result.Count > 0 ? $"; the choices of {string.Join(", ", result.Select(t => t.Method))} were written" : ""));
        return result;
    }

    /// <summary>The validation score recorded for a failed trial: below every real NDCG@20, so that no build chooses it.</summary>
    private const double FailedScore = -1;

    /// <summary>
    /// Writes OUT/trials.md and OUT/trials.csv from the trial records in <paramref name="outDir"/>: every
    /// trial of every method (its weight decay and parameters, validation NDCG@20, epochs, seconds), the
    /// chosen one marked, a failed trial with its failure in place of the score (none in the CSV); what the
    /// search saw of each parameter's effect, on validation only. For a method with several loss terms,
    /// each trial whose history.csv is at hand also shows each term's share of the gradient norm on the
    /// student vectors over its run: how its weights moved the balance.
    /// </summary>
    public static void WriteReport(string outDir)
    {
        var methods = DistillationMethods.AllNames.Where(m => Directory.Exists(Path.Combine(outDir, m))).ToList();
        var md = new StringBuilder("# Tuning trials (validation NDCG@20; the test set is never read)\n");
        var csv = new StringBuilder("method,trial,chosen,weight_decay,parameters,valid_ndcg@20,best_epoch,epochs_run,train_seconds,gradient_shares\n");
        var budget = new List<(string Method, int Trials, double Seconds)>();
        foreach (var m in methods)
        {
            var trials = Directory.GetFiles(Path.Combine(outDir, m), "trial-*.json").Select(ReadJson<TrialRecord>).OrderBy(t => t.Trial).ToList();
            if (trials.Count == 0) continue;
            int chosen = ReadTuned(outDir, m)?.Trial ?? -1;
            int failed = trials.Count(t => t.Failure is not null);
            string state = chosen >= 0 ? "" : failed == trials.Count ? ", every trial failed: no choice" : ", search not finished";
            budget.Add((m, trials.Count, trials.Sum(t => t.TrainSeconds)));
            var shares = trials.Select(t => GradientShares(Path.Combine(outDir, m, $"trial-{t.Trial}"))).ToList();
            bool withShares = shares.Any(x => x is not null);
            md.Append(CultureInfo.InvariantCulture, $"\n## {m} ({trials.Count} trials{(failed > 0 ? $", {failed} failed" : "")}{state})\n\n")
              .Append("| trial | weight decay | parameters | valid ndcg@20 | best epoch | epochs | train s |")
              .Append(withShares ? " gradient shares (whole run) |\n|---|---|---|---|---|---|---|---|\n" : "\n|---|---|---|---|---|---|---|\n");
            for (int i = 0; i < trials.Count; i++)
            {
                var t = trials[i];
                var parameters = string.Join(" ", t.Config.Parameters.Select(p => FormattableString.Invariant($"{p.Key}={p.Value:G4}")));
                string mark = t.Trial == chosen ? " (chosen)" : "";
                md.Append(CultureInfo.InvariantCulture,
                    $"| {t.Trial}{mark} | {t.Config.WeightDecay:G3} | {parameters} | {(t.Failure is null ? t.ValidNdcg20.ToString("F4", CultureInfo.InvariantCulture) : $"failed: {Headline(t.Failure)}")} | {t.BestEpoch} | {t.EpochsRun} | {t.TrainSeconds:F0} |");
                if (withShares)
                    md.Append(' ').Append(shares[i] is { } s
                        ? string.Join(", ", s.OrderByDescending(x => x.Share).Select(x => FormattableString.Invariant($"{x.Term} {100 * x.Share:F1}%")))
                        : "not logged").Append(" |");
                md.Append('\n');
                var csvShares = shares[i] is { } c ? string.Join(" ", c.Select(x => FormattableString.Invariant($"{x.Term}={x.Share:F4}"))) : "";
                csv.Append(CultureInfo.InvariantCulture,
                    $"{m},{t.Trial},{(t.Trial == chosen ? 1 : 0)},{t.Config.WeightDecay:G4},{parameters},{(t.Failure is null ? t.ValidNdcg20.ToString("F6", CultureInfo.InvariantCulture) : "")},{t.BestEpoch},{t.EpochsRun},{t.TrainSeconds:F1},{csvShares}\n");
            }
        }
        if (budget.Count > 0)
        {
            // The search's cost, for a report that states its budget: training time as the trials recorded it.
            md.Append("\n## Training time of the finished trials\n\n| method | trials | hours |\n|---|---|---|\n");
            foreach (var (m, n, seconds) in budget) md.Append(CultureInfo.InvariantCulture, $"| {m} | {n} | {seconds / 3600:F2} |\n");
            md.Append(CultureInfo.InvariantCulture, $"| all | {budget.Sum(b => b.Trials)} | {budget.Sum(b => b.Seconds) / 3600:F2} |\n");
        }
        AtomicFile.WriteText(Path.Combine(outDir, "trials.md"), md.ToString());
        AtomicFile.WriteText(Path.Combine(outDir, "trials.csv"), csv.ToString());
    }

    /// <summary>A failure's first clause, for a table cell: "training diverged: loss is NaN at epoch 3, batch 2/5".</summary>
    private static string Headline(string failure) => failure.Split(" (")[0].Split(';')[0].Replace('|', '/');

    private static string TrialRecordPath(string outDir, string method, int trial) => Path.Combine(outDir, method, $"trial-{trial}.json");

    /// <summary>The recorded trials among the first <paramref name="trials"/> of the method, whichever process ran them.</summary>
    private static List<TrialRecord> FinishedTrials(string outDir, string method, int trials) =>
        Enumerable.Range(0, trials).Select(k => TrialRecordPath(outDir, method, k)).Where(File.Exists).Select(ReadJson<TrialRecord>).ToList();

    /// <summary>
    /// A rough estimate of the method's search still to run, from its finished trials' mean training
    /// time (the trials of other processes included): empty before the first one ends.
    /// </summary>
    private static string Remaining(string outDir, string method, int trials)
    {
        var done = FinishedTrials(outDir, method, trials);
        if (done.Count == 0 || done.Count >= trials) return "";
        var left = TimeSpan.FromSeconds(done.Average(t => t.TrainSeconds) * (trials - done.Count));
        string more = left < TimeSpan.FromMinutes(1) ? "under a minute" : $"about {(int)left.TotalHours}h{left.Minutes:D2}";
        return $" ({done.Count} of {trials} trials done, {more} more at their mean)";
    }

    /// <summary>Name of the file that records what a search's trials share: teacher, student dimension, trial count, training settings.</summary>
    public const string SearchFile = "search.json";

    /// <summary>What the search's trials share, as DIR/search.json records it.</summary>
    private static JsonObject SearchSettings(string teacherDir, int studentDim, TrainOptions train, int trials, string fingerprint) => new()
    {
        ["teacher"] = Path.TrimEndingDirectorySeparator(Path.GetFullPath(teacherDir)),
        [TeacherFingerprintKey] = fingerprint,
        ["student_dim"] = studentDim,
        ["trials"] = trials,
        ["train"] = JsonSerializer.SerializeToNode(train, JsonOptions.Default),
    };

    private const string TeacherFingerprintKey = "teacher_model_sha256";

    /// <summary>
    /// Checks the search's shared settings against DIR/search.json, and with <paramref name="write"/> records them
    /// there when DIR has none: a second call (to continue, or a second process) with another teacher, student
    /// dimension, trial count, seed or training setting would mix trials of different searches or change the
    /// budget of some methods only, so it is refused, naming what differs.
    /// </summary>
    private static void CheckSearch(string outDir, JsonObject wanted, bool write)
    {
        var path = Path.Combine(outDir, SearchFile);
        if (!File.Exists(path))
        {
            if (!write) return;
            Directory.CreateDirectory(outDir);
            AtomicFile.WriteText(path, wanted.ToJsonString(JsonOptions.Default));
            return;
        }
        JsonObject recorded;
        try
        {
            recorded = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new UserErrorException($"{path}: empty record");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new UserErrorException($"{path}: not a search record ({e.Message})");
        }
        // A search.json of an earlier build lacks the trial count: its METHOD.json files name the count, its
        // trial records bound it from below; the count so found (or, with neither, the one asked for) is checked
        // like a recorded one and then written to the record.
        bool upgrade = false;
        // It lacks the teacher's fingerprint too: the current teacher's is adopted (its path was checked, all that
        // build could check) and recorded, so that from now on a teacher replaced at that path is refused.
        if (recorded[TeacherFingerprintKey] is null)
        {
            recorded[TeacherFingerprintKey] = wanted[TeacherFingerprintKey]!.DeepClone();
            upgrade = true;
        }
        if (recorded["trials"] is null)
        {
            int asked = (int)wanted["trials"]!;
            var (named, atLeast) = TrialsOnRecord(outDir);
            recorded["trials"] = named ?? Math.Max(asked, atLeast);
            upgrade = true;
        }
        var differences = SettingsDiff.Of(recorded, wanted, commonOnly: false);
        if (differences.Count > 0)
            throw new UserErrorException($"{outDir} holds a search with other settings ({string.Join("; ", differences.Select(Describe))}): " +
                "continue it with the same teacher and options, or give another --out" +
                (differences.Any(d => d.Key == "trials")
                    ? " (the trial count is the search's budget, the same for every method: a search is neither cut short nor extended)"
                    : ""));
        if (upgrade && write) AtomicFile.WriteText(path, recorded.ToJsonString(JsonOptions.Default));

        string Describe((string Key, string? There, string? Here) d) => d.Key == TeacherFingerprintKey
            ? $"the teacher's model.bin has SHA-256 {Short(d.There)} there, {Short(d.Here)} here: " +
              $"the teacher at {(string?)wanted["teacher"]} is not the one the search began with"
            : SettingsDiff.Describe(d, OptionOf);
        static string Short(string? hash) => hash?.Trim('"') is { } h ? (h.Length > 12 ? h[..12] + "..." : h) : "(none)";
    }

    /// <summary>
    /// The trial count of a search in <paramref name="outDir"/> as its files show it: the largest that a
    /// METHOD.json names (null when there is none), and one more than the highest trial recorded.
    /// </summary>
    private static (int? Named, int AtLeast) TrialsOnRecord(string outDir)
    {
        var methods = DistillationMethods.AllNames.Where(m => Directory.Exists(Path.Combine(outDir, m))).ToList();
        var named = methods.Select(m => ReadTuned(outDir, m)?.Trials).Max();
        int atLeast = methods.SelectMany(m => Directory.GetFiles(Path.Combine(outDir, m), "trial-*.json"))
            .Select(f => int.TryParse(Path.GetFileNameWithoutExtension(f)["trial-".Length..], CultureInfo.InvariantCulture, out int k) ? k + 1 : 0)
            .DefaultIfEmpty(0).Max();
        return (named, atLeast);
    }

    /// <summary>A search record's key as the CLI option that sets it (the key itself where none does).</summary>
    private static string OptionOf(string key) => key switch
    {
        "teacher" => "--teacher", "student_dim" => "--dim", "train.max_epochs" => "--epochs", "train.eval_every" => "--eval-every",
        "train.patience" => "--patience", "train.learning_rate" => "--lr", "train.batch_size" => "--batch-size",
        "train.negatives_per_pair" => "--negatives", "train.seed" => "--seed", "train.sparse_adam" => "--adam", "trials" => "--trials",
        _ => key,
    };

    /// <summary>
    /// Each loss term's share of the gradient norm over the run in <paramref name="trialDir"/> (terms with a
    /// zero share left out), or null when the run has fewer than two terms or no history with term columns.
    /// </summary>
    private static IReadOnlyList<(string Term, double Share)>? GradientShares(string trialDir) =>
        LossTermSummary.WholeRun(trialDir) is { Count: >= 2 } phase
            ? phase.Where(x => x.GradientShare > 0).Select(x => (x.Term, x.GradientShare)).ToList()
            : null;

    /// <summary>
    /// DIR/METHOD.json written by <see cref="Tune"/>, or null when DIR has none for the method. A file that is not
    /// one (a key missing, null or unknown, a parameter the method does not search, a value that is no finite
    /// number) or that holds another method's settings is refused with <see cref="UserErrorException"/>, naming it.
    /// </summary>
    public static TunedConfig? ReadTuned(string dir, string method)
    {
        method = method.ToLowerInvariant();
        var path = Path.Combine(dir, method + ".json");
        if (!File.Exists(path)) return null;
        var tuned = ReadJson<TunedConfig>(path, StrictJson);
        var searched = SpaceOf(method).Skip(1).Select(d => d.Name).ToList();
        string? problem =
            tuned.Method != method ? $"its \"method\" is {tuned.Method}, not {method} (another method's settings saved as {method}.json?)"
            : tuned.Config.Method != method ? $"its \"config\" is of {tuned.Config.Method}, not {method}"
            : tuned.Config.Parameters.Keys.FirstOrDefault(k => !searched.Contains(k)) is { } unknown
                ? $"{method} has no searched parameter \"{unknown}\" (" + (searched.Count == 0 ? "it searches the weight decay only)" : $"it searches {string.Join(", ", searched)})")
            : !(tuned.Config.WeightDecay >= 0) || double.IsInfinity(tuned.Config.WeightDecay) ? $"weight_decay {tuned.Config.WeightDecay} is not 0 or a positive number"
            : tuned.Config.Parameters.FirstOrDefault(p => !double.IsFinite(p.Value)) is { Key: not null } bad ? $"{bad.Key} {bad.Value} is not a finite number"
            : null;
        if (problem is not null) throw new UserErrorException($"{path}: not a tuned config of {method}: {problem}");
        return tuned;
    }

    /// <summary>
    /// JSON options for files a user may have written by hand (METHOD.json in a --configs folder): every key
    /// known and present, none null where a value is needed.
    /// </summary>
    private static readonly JsonSerializerOptions StrictJson = new(JsonOptions.Default)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
    };

    private static T ReadJson<T>(string path) => ReadJson<T>(path, JsonOptions.Default);

    private static T ReadJson<T>(string path, JsonSerializerOptions options)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), options)
                   ?? throw new UserErrorException($"{path}: empty record");
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{path}: not a valid tuning record ({e.Message})");
        }
    }
}
