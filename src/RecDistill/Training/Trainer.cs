using System.Diagnostics;
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

    public Trainer(TrainOptions options)
    {
        options.Validate();
        _o = options;
    }

    /// <summary>Called with progress after every batch and every validation.</summary>
    public Action<TrainingProgress>? Progress { get; init; }

    /// <summary>When set, the best model so far is written here (atomically) at every improvement.</summary>
    public string? CheckpointPath { get; init; }

    public TrainResult Fit(IRecommender model, SplitDataset data, IDistillationMethod? method = null)
    {
        torch.manual_seed(_o.Seed);
        var rng = new Random(_o.Seed);
        var sampler = new TrainingSampler(data);
        var evaluator = new FullRankingEvaluator(data);
        var device = model.Device;

        RowSparseAdam? userOpt = null, itemOpt = null;
        optim.Optimizer? denseOpt = null;
        var extra = method?.Parameters.ToList() ?? new List<TorchSharp.Modules.Parameter>();
        if (model.RowSparse)
        {
            userOpt = new RowSparseAdam(model.UserWeight, _o.LearningRate, _o.WeightDecay);
            itemOpt = new RowSparseAdam(model.ItemWeight, _o.LearningRate, _o.WeightDecay);
        }
        else
        {
            extra.Insert(0, model.ItemWeight);
            extra.Insert(0, model.UserWeight);
        }
        if (extra.Count > 0)
            denseOpt = optim.Adam(extra, lr: _o.LearningRate, weight_decay: _o.WeightDecay);

        var history = new List<EpochRecord>();
        var clock = Stopwatch.StartNew();
        int bestEpoch = 0, badEvals = 0, epoch = 0;
        double best = double.NegativeInfinity;
        IReadOnlyDictionary<string, double> bestValid = new Dictionary<string, double>();
        IReadOnlyDictionary<string, double>? lastValid = null;
        Tensor? bestUsers = null, bestItems = null;
        bool early = false;

        try
        {
            for (epoch = 1; epoch <= _o.MaxEpochs; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                method?.OnEpochStart(epoch, model, rng);
                var s = sampler.Sample(rng, _o.NegativesPerPair);
                int batches = (s.Count + _o.BatchSize - 1) / _o.BatchSize;
                double lossSum = 0;
                for (int b = 0; b < batches; b++)
                {
                    using var scope = torch.NewDisposeScope();
                    int start = b * _o.BatchSize, n = Math.Min(_o.BatchSize, s.Count - start);
                    int ns = s.NegativesPerPair;
                    var batch = new TrainingBatch(
                        torch.tensor(s.Users.AsSpan(start, n).ToArray(), device: device),
                        torch.tensor(s.Positives.AsSpan(start, n).ToArray(), device: device),
                        torch.tensor(s.Negatives.AsSpan(start * ns, n * ns).ToArray(), device: device).view(n, ns),
                        epoch, b);
                    var (xu, xi) = method?.ExtraIds(batch) ?? (null, null);
                    var userIds = xu is null ? batch.Users : torch.cat(new[] { batch.Users, xu.flatten() });
                    var itemParts = new List<Tensor> { batch.Positives, batch.Negatives.flatten() };
                    if (xi is not null) itemParts.Add(xi.flatten());
                    var lookup = model.Lookup(userIds, torch.cat(itemParts));

                    var baseLoss = BprLoss(lookup, batch);
                    var loss = baseLoss;
                    Tensor? kd = null;
                    if (method is not null)
                    {
                        kd = method.Loss(batch, lookup);
                        loss = loss + kd;
                    }
                    double lv = loss.item<float>();
                    if (!double.IsFinite(lv))
                        throw new TrainingDivergedException(
                            $"loss is {lv} at epoch {epoch}, batch {b + 1}/{batches} (base {baseLoss.item<float>()}" +
                            (kd is null ? ")" : $", distillation {kd.item<float>()})"));
                    lossSum += lv;

                    denseOpt?.zero_grad();
                    loss.backward();
                    if (lookup.IsRowSparse)
                    {
                        userOpt!.Step(lookup.UserRowIds!, lookup.UserRows.grad!);
                        itemOpt!.Step(lookup.ItemRowIds!, lookup.ItemRows.grad!);
                    }
                    denseOpt?.step();
                    Progress?.Invoke(new TrainingProgress(epoch, _o.MaxEpochs, b + 1, batches, lossSum / (b + 1),
                        lastValid, bestEpoch, best, clock.Elapsed));
                }

                double? validMetric = null;
                if (epoch % _o.EvalEvery == 0 || epoch == _o.MaxEpochs)
                {
                    var valid = evaluator.Evaluate(model, EvalSplit.Valid);
                    lastValid = valid.Metrics;
                    validMetric = valid.Metrics.GetValueOrDefault(_o.SelectionMetric, double.NaN);
                    if (validMetric > best)
                    {
                        best = validMetric.Value; bestEpoch = epoch; bestValid = valid.Metrics; badEvals = 0;
                        bestUsers?.Dispose(); bestItems?.Dispose();
                        bestUsers = model.UserWeight.detach().clone();
                        bestItems = model.ItemWeight.detach().clone();
                        if (CheckpointPath is not null) ModelFile.Save(CheckpointPath, model);
                    }
                    else badEvals++;
                    Progress?.Invoke(new TrainingProgress(epoch, _o.MaxEpochs, batches, batches, lossSum / batches,
                        lastValid, bestEpoch, best, clock.Elapsed, AfterValidation: true));
                }
                history.Add(new EpochRecord(epoch, lossSum / batches, epochClock.Elapsed.TotalSeconds, validMetric,
                    method?.EpochDiagnostics.Count > 0 ? new Dictionary<string, double>(method.EpochDiagnostics) : null));
                if (badEvals >= _o.Patience) { early = true; break; }
            }
        }
        finally
        {
            userOpt?.Dispose(); itemOpt?.Dispose(); denseOpt?.Dispose();
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
        return new TrainResult(bestEpoch, Math.Min(epoch, _o.MaxEpochs), clock.Elapsed.TotalSeconds, bestValid, history, early);
    }

    /// <summary>Sum over the batch of the mean over negatives of -log sigmoid(s_ui - s_uj).</summary>
    public static Tensor BprLoss(EmbeddingLookup lookup, TrainingBatch batch)
    {
        var u = lookup.Users(batch.Users);              // [B, d]
        var p = lookup.Items(batch.Positives);          // [B, d]
        var n = lookup.Items(batch.Negatives);          // [B, ns, d]
        var pos = (u * p).sum(-1, keepdim: true);       // [B, 1]
        var neg = torch.bmm(n, u.unsqueeze(-1)).squeeze(-1); // [B, ns]
        return -nn.functional.logsigmoid(pos - neg).mean(new long[] { 1 }).sum();
    }
}
