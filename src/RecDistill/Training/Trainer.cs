using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>Raised when a loss turns NaN or infinite; names where it happened.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// The one training loop: per-epoch negative sampling, shuffled mini-batches, BPR loss plus an
/// optional distillation loss, Adam (row-sparse for BPR-MF), validation every few epochs, early
/// stopping on validation NDCG@20 with patience, best weights kept (in memory and on disk).
/// </summary>
public sealed class Trainer
{
    private readonly TrainOptions _o;

    /// <summary>A trainer with these options (checked at once).</summary>
    public Trainer(TrainOptions options)
    {
        options.Validate();
        _o = options;
    }

    /// <summary>Called with progress after every batch and every validation.</summary>
    public Action<TrainingProgress>? Progress { get; init; }

    /// <summary>When set, the best model so far is written here (atomically) at every improvement.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>
    /// When set, the state needed to continue the run (weights, optimizer moments, distillation
    /// parameters, early-stopping state) is written here atomically at the end of every epoch with a
    /// validation, of the last epoch, and of any epoch ending <see cref="StateInterval"/> or more after
    /// the previous write.
    /// </summary>
    public string? StatePath { get; init; }

    /// <summary>
    /// Longest time between two writes of the resume state. A resumed run replays the epochs since the
    /// last write with the same draws (each epoch reseeds from (seed, epoch)), so writing less often
    /// costs only the replay, while writing after every epoch cost a BPR teacher (0.3 s epochs, a 70 MB
    /// state on CiteULike) a sixth of its time.
    /// </summary>
    public TimeSpan StateInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Lanes for a method's loss terms (default: libtorch's thread count, at most the method's terms); for tests.</summary>
    internal int? LossLanes { get; init; }

    /// <summary>
    /// What the resume state must have been written with beyond the trainer's options, the model and the
    /// method's name and parameter shapes: the workflow's data options and the method's settings.
    /// </summary>
    internal JsonObject? RunSettings { get; init; }

    /// <summary>Continue from <see cref="StatePath"/> when it exists (needs <see cref="CheckpointPath"/> for the best weights).</summary>
    public bool Resume { get; init; }

    /// <summary>
    /// Copies of the model's tables, owned by the caller; a scope holds the detached views while clone
    /// reads them (a tensor that nothing holds can be finalized mid-call, as a Scalar can).
    /// </summary>
    private static (Tensor Users, Tensor Items) CopyWeights(IRecommender model)
    {
        using var scope = torch.NewDisposeScope();
        return (model.UserWeight.detach().clone().DetachFromDisposeScope(), model.ItemWeight.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>
    /// Trains <paramref name="model"/> on the data's train split (with <paramref name="method"/>'s loss added when given) and leaves it with its best-validation weights.
    /// </summary>
    /// <remarks>
    /// <paramref name="cancellationToken"/> is checked before every batch. A stop requested during an epoch's
    /// batches ends the run there: <see cref="StatePath"/> keeps the last state written, and a resume replays
    /// the epochs since. A stop requested once the epoch's batches are done (during its validation, or in the
    /// progress callback of its last batch or of its validation) lets the epoch end and writes its state first.
    /// Either way the model is left with its best weights and <see cref="OperationCanceledException"/> is thrown.
    /// </remarks>
    public TrainResult Fit(IRecommender model, SplitDataset data, IDistillationMethod? method = null, CancellationToken cancellationToken = default)
    {
        CheckSplit(data);
        DenormalFlush.OnThisThread();
        var sampler = new TrainingSampler(data);
        var evaluator = new FullRankingEvaluator(data);
        var device = model.Device;

        RowSparseAdam? userOpt = null, itemOpt = null;
        DenseAdam? denseOpt = null;
        var methodParams = method?.Parameters.ToList() ?? new List<TorchSharp.Modules.Parameter>();
        var extra = new List<TorchSharp.Modules.Parameter>(methodParams);
        if (model.RowSparse)
        {
            userOpt = new RowSparseAdam(model.UserWeight, _o.LearningRate, _o.WeightDecay, mode: _o.SparseAdam);
            itemOpt = new RowSparseAdam(model.ItemWeight, _o.LearningRate, _o.WeightDecay, mode: _o.SparseAdam);
        }
        else
        {
            extra.Insert(0, model.ItemWeight);
            extra.Insert(0, model.UserWeight);
        }
        if (extra.Count > 0)
            denseOpt = new DenseAdam(extra, _o.LearningRate, _o.WeightDecay, _o.PlainAdam);

        // With a method, the BPR loss and the method's terms take their gradients apart, on lanes
        // that share the threads (CPU; at most as many lanes as the method has terms, made at the
        // first batch). With one or two threads every lane has one, and the numbers are the same.
        int threads = Math.Max(1, torch.get_num_threads());
        LossTermLanes? lanes = null;

        var history = new List<EpochRecord>();
        var clock = Stopwatch.StartNew();
        var sinceStateWrite = Stopwatch.StartNew();
        double elapsedBefore = 0;
        int bestEpoch = 0, badEvals = 0, epoch = 0, firstEpoch = 1;
        double best = double.NegativeInfinity;
        IReadOnlyDictionary<string, double> bestValid = new Dictionary<string, double>();
        IReadOnlyDictionary<string, double>? lastValid = null;
        Tensor? bestUsers = null, bestItems = null;
        bool early = false, finished = false;
        string fingerprint = Fingerprint(model, method, methodParams);
        TimeSpan Elapsed() => clock.Elapsed + TimeSpan.FromSeconds(elapsedBefore);

        try
        {
            if (Resume && StatePath is not null && File.Exists(StatePath))
            {
                var h = RestoreState(model, method, methodParams, userOpt, itemOpt, denseOpt, fingerprint);
                firstEpoch = h.Epoch + 1;
                epoch = h.Epoch;
                finished = h.Finished; early = h.EarlyStopped;
                best = h.Best; bestEpoch = h.BestEpoch; badEvals = h.BadEvals;
                bestValid = h.BestValid; lastValid = h.LastValid;
                history.AddRange(h.History);
                elapsedBefore = h.ElapsedSeconds;
                if (bestEpoch == h.Epoch)
                {
                    // The best weights are the checkpoint's own; model.bin may not have been written yet.
                    (bestUsers, bestItems) = CopyWeights(model);
                    if (CheckpointPath is not null) ModelFile.Save(CheckpointPath, model);
                }
                else if (bestEpoch > 0)
                {
                    if (CheckpointPath is null || !File.Exists(CheckpointPath))
                        throw new DataFormatException(StatePath, 0, "the best model of the interrupted run (model.bin) is missing");
                    var (c, users, items) = ModelFile.Read(CheckpointPath);
                    bestUsers = torch.tensor(users, c.NumUsers, c.Dim, device: device);
                    bestItems = torch.tensor(items, c.NumItems, c.Dim, device: device);
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            for (epoch = firstEpoch; epoch <= _o.MaxEpochs && !finished; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                // Each epoch's randomness depends on (seed, epoch) only, so a resumed run draws what an
                // uninterrupted one would have drawn.
                long epochSeed = TrainingCheckpoint.EpochSeed(_o.Seed, epoch);
                torch.manual_seed(epochSeed);
                var rng = new Random((int)(epochSeed & int.MaxValue));
                method?.OnEpochStart(epoch, model, rng);
                var s = sampler.Sample(rng, _o.NegativesPerPair);
                int batches = (s.Count + _o.BatchSize - 1) / _o.BatchSize;
                double lossSum = 0;
                // Per term: the summed loss and the norm of its gradient on the batch's embeddings (diagnostics).
                var termSums = new Dictionary<string, double>();
                // Each lane runs with its share of the threads while batches run; evaluation and the
                // per-epoch steps get them all.
                if (lanes is { Lanes: > 1 }) torch.set_num_threads(lanes.ThreadsPerLane);
                try
                {
                    for (int b = 0; b < batches; b++)
                    {
                        // Between batches nothing is half-written: the last state on disk is whole.
                        cancellationToken.ThrowIfCancellationRequested();
                        using var scope = torch.NewDisposeScope();
                        int start = b * _o.BatchSize;
                        var batch = TrainingBatch.Slice(s, start, Math.Min(_o.BatchSize, s.Count - start), epoch, b, device);
                        var lookup = Lookup(model, batch, method);

                        denseOpt?.ZeroGrad();
                        double baseValue, kdValue = 0;
                        if (method is not null)
                        {
                            var terms = new List<LossTerm> { new("bpr", l => BprLoss(l, batch)) };
                            terms.AddRange(method.Terms(batch));
                            if (lanes is null)
                            {
                                int count = device.type != DeviceType.CPU ? 1 : Math.Clamp(LossLanes ?? threads, 1, terms.Count - 1);
                                lanes = new LossTermLanes(count, Math.Max(1, threads / count));
                                if (lanes.Lanes > 1) torch.set_num_threads(lanes.ThreadsPerLane);
                            }
                            var values = lanes.Backward(lookup, terms, methodParams);
                            baseValue = values[0];
                            for (int t = 1; t < values.Length; t++) kdValue += values[t];
                            AddTermDiagnostics(termSums, terms, values, lanes.LastEmbeddingGradientNorms);
                        }
                        else
                        {
                            var loss = BprLoss(lookup, batch);
                            baseValue = loss.item<float>();
                            loss.backward();
                        }
                        double lv = baseValue + kdValue;
                        // Checked before any weight changes.
                        if (!double.IsFinite(lv))
                            throw new TrainingDivergedException(
                                $"loss is {lv} at epoch {epoch}, batch {b + 1}/{batches} (base {baseValue:G6}" +
                                (method is null ? ")" : $", {method.Name} {kdValue:G6})") +
                                (bestEpoch > 0 ? $"; the best model (epoch {bestEpoch}) is kept" : "; no model was saved"));
                        lossSum += lv;

                        if (lookup.IsRowSparse)
                        {
                            userOpt!.Step(lookup.UserRowIds!, lookup.UserRows.grad!);
                            itemOpt!.Step(lookup.ItemRowIds!, lookup.ItemRows.grad!);
                        }
                        denseOpt?.Step();
                        Progress?.Invoke(new TrainingProgress(epoch, _o.MaxEpochs, b + 1, batches, lossSum / (b + 1),
                            lastValid, bestEpoch, best, Elapsed()));
                    }
                }
                finally
                {
                    if (lanes is { Lanes: > 1 }) torch.set_num_threads(threads);
                }

                // Exact sparse Adam: rows the last batches skipped are brought up to date before the
                // weights are evaluated or saved.
                userOpt?.Synchronize();
                itemOpt?.Synchronize();
                double? validMetric = null;
                bool improved = false;
                if (epoch % _o.EvalEvery == 0 || epoch == _o.MaxEpochs)
                {
                    var valid = evaluator.Evaluate(model, EvalSplit.Valid);
                    lastValid = valid.Metrics;
                    validMetric = valid.Metrics.GetValueOrDefault(_o.SelectionMetric, double.NaN);
                    if (validMetric > best)
                    {
                        improved = true;
                        best = validMetric.Value; bestEpoch = epoch; bestValid = valid.Metrics; badEvals = 0;
                        bestUsers?.Dispose(); bestItems?.Dispose();
                        (bestUsers, bestItems) = CopyWeights(model);
                    }
                    else badEvals++;
                    Progress?.Invoke(new TrainingProgress(epoch, _o.MaxEpochs, batches, batches, lossSum / batches,
                        lastValid, bestEpoch, best, Elapsed(), AfterValidation: true));
                }
                Dictionary<string, double>? diagnostics = null;
                if (method is not null)
                {
                    diagnostics = new Dictionary<string, double>(method.EpochDiagnostics);
                    foreach (var (k, v) in termSums) diagnostics[k] = v / batches;
                }
                history.Add(new EpochRecord(epoch, lossSum / batches, epochClock.Elapsed.TotalSeconds, validMetric,
                    diagnostics is { Count: > 0 } ? diagnostics : null));
                early = badEvals >= _o.Patience;
                finished = early || epoch == _o.MaxEpochs;
                // A stop asked for after the epoch's batches saves the whole epoch (any epoch's end is a valid state).
                bool stopping = cancellationToken.IsCancellationRequested;
                // The resume state first, then the best model: a run killed between the two resumes
                // from a state whose best weights are its own and rewrites model.bin.
                if (StatePath is not null && (validMetric is not null || finished || stopping || sinceStateWrite.Elapsed >= StateInterval))
                {
                    sinceStateWrite.Restart();
                    SaveState(model, methodParams, userOpt, itemOpt, denseOpt, new TrainingCheckpointHeader
                    {
                        Epoch = epoch, Finished = finished, EarlyStopped = early, Best = best, BestEpoch = bestEpoch,
                        BadEvals = badEvals, ElapsedSeconds = Elapsed().TotalSeconds,
                        BestValid = new Dictionary<string, double>(bestValid),
                        LastValid = lastValid is null ? null : new Dictionary<string, double>(lastValid),
                        History = history, Fingerprint = fingerprint,
                    });
                }
                if (improved && CheckpointPath is not null) ModelFile.Save(CheckpointPath, model);
                if (stopping) throw new OperationCanceledException(cancellationToken);
            }
        }
        finally
        {
            userOpt?.Dispose(); itemOpt?.Dispose(); denseOpt?.Dispose(); lanes?.Dispose();
            // Whatever happened, the model ends with its best-validation weights.
            if (bestUsers is not null)
            {
                using (torch.no_grad())
                {
                    model.UserWeight.copy_(bestUsers);
                    model.ItemWeight.copy_(bestItems!);
                }
                bestUsers.Dispose(); bestItems!.Dispose();
            }
        }
        int epochsRun = history.Count == 0 ? 0 : history[^1].Epoch;
        return new TrainResult(bestEpoch, epochsRun, Elapsed().TotalSeconds, bestValid, history, early);
    }

    /// <summary>Throws <see cref="ArgumentException"/> for a split without train or validation interactions, which no run can use.</summary>
    internal static void CheckSplit(SplitDataset data)
    {
        if (data.TrainCount == 0) throw new ArgumentException($"{data.Name}: the train split is empty; there is nothing to learn from");
        if (data.ValidCount == 0)
            throw new ArgumentException($"{data.Name}: the validation split is empty, and early stopping and model selection need it; " +
                "users need at least 6 interactions for the 0.8/0.1/0.1 split to give them validation items (more data, or a pre-split directory with valid.txt)");
    }

    /// <summary>Every setting a resume must share with the run that wrote the state, as JSON (its keys name them in a refusal).</summary>
    private string Fingerprint(IRecommender model, IDistillationMethod? method, List<TorchSharp.Modules.Parameter> methodParams)
    {
        var fingerprint = new JsonObject
        {
            ["train"] = JsonSerializer.SerializeToNode(_o with { MaxEpochs = 0 }, JsonOptions.Default),
            ["model"] = JsonSerializer.SerializeToNode(ModelFile.ConfigOf(model), JsonOptions.Default),
            ["method"] = method?.Name,
            ["parameters"] = JsonSerializer.SerializeToNode(methodParams.Select(p => p.shape).ToList(), JsonOptions.Default),
        };
        foreach (var (key, value) in RunSettings ?? []) fingerprint[key] = value?.DeepClone();
        return fingerprint.ToJsonString(JsonOptions.Default);
    }

    /// <summary>The settings that differ between a checkpoint's fingerprint and this run's, as text for a refusal.</summary>
    private static string FingerprintDifferences(string recorded, string wanted)
    {
        JsonObject? was;
        try { was = JsonNode.Parse(recorded) as JsonObject; }
        catch (JsonException) { was = null; }
        if (was is null) return "which ones is not known";
        var now = JsonNode.Parse(wanted)!.AsObject();
        var differences = RecDistill.Runs.SettingsDiff.Of(was, now, commonOnly: true);
        const int shown = 5;
        var parts = differences.Take(shown).Select(d => $"{d.Key} {d.There ?? "(none)"} in the checkpoint, {d.Here} now").ToList();
        if (differences.Count > shown) parts.Add($"{differences.Count - shown} more");
        // A checkpoint of an earlier version lacks what it did not yet record (e.g. the method's settings).
        var unrecorded = now.Select(kv => kv.Key).Where(k => !was.ContainsKey(k)).ToList();
        if (unrecorded.Count > 0) parts.Add($"it does not record {string.Join(" or ", unrecorded)} (an earlier version wrote it)");
        return parts.Count == 0 ? "which ones is not known" : string.Join("; ", parts);
    }

    private void SaveState(IRecommender model, List<TorchSharp.Modules.Parameter> methodParams, RowSparseAdam? userOpt,
        RowSparseAdam? itemOpt, DenseAdam? denseOpt, TrainingCheckpointHeader header)
    {
        var tensors = new List<(string, Tensor)> { ("users", model.UserWeight), ("items", model.ItemWeight) };
        if (userOpt is not null)
        {
            tensors.Add(("users.m", userOpt.FirstMoment)); tensors.Add(("users.v", userOpt.SecondMoment));
            tensors.Add(("items.m", itemOpt!.FirstMoment)); tensors.Add(("items.v", itemOpt.SecondMoment));
        }
        for (int k = 0; k < methodParams.Count; k++) tensors.Add(($"method.{k}", methodParams[k]));
        if (denseOpt is not null) tensors.AddRange(denseOpt.StateTensors);
        TrainingCheckpoint.Save(StatePath!, header with { SparseSteps = userOpt?.Steps ?? 0, DenseSteps = denseOpt?.Steps },
            tensors, null);
    }

    private TrainingCheckpointHeader RestoreState(IRecommender model, IDistillationMethod? method,
        List<TorchSharp.Modules.Parameter> methodParams, RowSparseAdam? userOpt, RowSparseAdam? itemOpt,
        DenseAdam? denseOpt, string fingerprint)
    {
        var (h, t, opt) = TrainingCheckpoint.Load(StatePath!);
        if (h.Fingerprint != fingerprint)
            throw new UserErrorException(
                $"{StatePath}: the checkpoint was written with other settings ({FingerprintDifferences(h.Fingerprint, fingerprint)}); " +
                "resume with the run's own settings, or train the run again with overwrite");
        Tensor Get(string name) => t.TryGetValue(name, out var v) ? v
            : throw new DataFormatException(StatePath!, 0, $"the checkpoint lacks '{name}'");
        using (torch.no_grad())
        {
            model.UserWeight.copy_(Get("users"));
            model.ItemWeight.copy_(Get("items"));
            for (int k = 0; k < methodParams.Count; k++) methodParams[k].copy_(Get($"method.{k}"));
        }
        userOpt?.Restore(Get("users.m"), Get("users.v"), h.SparseSteps);
        itemOpt?.Restore(Get("items.m"), Get("items.v"), h.SparseSteps);
        denseOpt?.Restore(Get, h.DenseSteps, opt, StatePath!);
        foreach (var v in t.Values) v.Dispose();
        return h;
    }

    /// <summary>
    /// The model's vectors for a batch: its users, positives and negatives, plus the ids the method asks
    /// for (<see cref="IDistillationMethod.ExtraIds"/>), looked up once for the BPR loss and every term.
    /// </summary>
    public static EmbeddingLookup Lookup(IRecommender model, TrainingBatch batch, IDistillationMethod? method)
    {
        var (xu, xi) = method?.ExtraIds(batch) ?? (null, null);
        var userIds = xu is null ? batch.Users : torch.cat(new[] { batch.Users, xu.flatten() });
        var itemParts = new List<Tensor> { batch.Positives, batch.Negatives.flatten() };
        if (xi is not null) itemParts.Add(xi.flatten());
        return model.Lookup(userIds, torch.cat(itemParts));
    }

    /// <summary>Sum over the batch of the mean over negatives of -log sigmoid(s_ui - s_uj).</summary>
    public static Tensor BprLoss(EmbeddingLookup lookup, TrainingBatch batch)
    {
        if (lookup.IsRowSparse || lookup.ScoresLists)
        {
            // Each user's positive and negatives scored as one list, straight on the rows (ListScores),
            // without gathering [B, d] copies and scattering their gradients back.
            var scores = lookup.ListScores(batch.Users, torch.cat(new[] { batch.Positives.unsqueeze(1), batch.Negatives }, 1));
            long ns = batch.Negatives.shape[1];
            return -nn.functional.logsigmoid(scores.narrow(1, 0, 1) - scores.narrow(1, 1, ns)).mean(new long[] { 1 }).sum();
        }
        var u = lookup.Users(batch.Users);              // [B, d]
        var p = lookup.Items(batch.Positives);          // [B, d]
        var n = lookup.Items(batch.Negatives);          // [B, ns, d]
        var pos = (u * p).sum(-1, keepdim: true);       // [B, 1]
        var neg = torch.bmm(n, u.unsqueeze(-1)).squeeze(-1); // [B, ns]
        return -nn.functional.logsigmoid(pos - neg).mean(new long[] { 1 }).sum();
    }

    /// <summary>
    /// Adds a batch's per-term losses and embedding-gradient norms into the epoch's sums, keyed
    /// loss_NAME and grad_NAME. A method's shards of one term ("nkd 1/2", "nkd 2/2") count as that
    /// term: their losses add, their gradients (on separate rows of the batch) combine as the root
    /// of their summed squares.
    /// </summary>
    private static void AddTermDiagnostics(Dictionary<string, double> sums, IReadOnlyList<LossTerm> terms, double[] values, double[] gradientNorms)
    {
        var squares = new Dictionary<string, double>();
        for (int t = 0; t < values.Length; t++)
        {
            var parts = terms[t].Name.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 1 && parts[^1].Contains('/')) parts = parts[..^1];
            var name = string.Join('_', parts);
            sums["loss_" + name] = sums.GetValueOrDefault("loss_" + name) + values[t];
            squares[name] = squares.GetValueOrDefault(name) + gradientNorms[t] * gradientNorms[t];
        }
        foreach (var (name, sq) in squares) sums["grad_" + name] = sums.GetValueOrDefault("grad_" + name) + Math.Sqrt(sq);
    }
}
