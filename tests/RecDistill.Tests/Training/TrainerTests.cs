using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class TrainerTests
{
    private static readonly TrainOptions Quick = new()
    {
        MaxEpochs = 30, EvalEvery = 5, Patience = 3, LearningRate = 0.05, WeightDecay = 1e-4, BatchSize = 64, Seed = 11,
    };

    [Fact]
    public void Bpr_learns_the_planted_structure()
    {
        var data = TestData.Clustered();
        using var model = new BprMf(data.NumUsers, data.NumItems, 8);
        var eval = new FullRankingEvaluator(data);
        double before = eval.Evaluate(model, EvalSplit.Valid)["ndcg@20"];
        var result = new Trainer(Quick).Fit(model, data);
        double after = eval.Evaluate(model, EvalSplit.Valid)["ndcg@20"];
        Assert.True(after > before + 0.2, $"valid ndcg@20 {before:F3} -> {after:F3}");
        Assert.True(result.History[^1].Loss < result.History[0].Loss);
    }

    [Fact]
    public void Same_seed_same_numbers_other_seed_other_numbers()
    {
        var data = TestData.Clustered();
        float[] Run(int seed)
        {
            manual_seed(seed);
            using var m = new BprMf(data.NumUsers, data.NumItems, 6);
            new Trainer(Quick with { MaxEpochs = 6, Seed = seed }).Fit(m, data);
            return m.UserWeight.detach().data<float>().ToArray();
        }
        Assert.Equal(Run(5), Run(5));
        Assert.NotEqual(Run(5), Run(6));
    }

    [Fact]
    public void Model_ends_with_its_best_validation_weights_and_checkpoint()
    {
        var data = TestData.Clustered();
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, ModelFile.FileName);
        using var model = new BprMf(data.NumUsers, data.NumItems, 8);
        // A learning rate this large overshoots after a while, so the best epoch is not the last.
        var result = new Trainer(Quick with { MaxEpochs = 40, EvalEvery = 2, Patience = 4, LearningRate = 0.3 })
            { CheckpointPath = path }.Fit(model, data);
        Assert.True(result.BestEpoch < result.EpochsRun, $"best epoch {result.BestEpoch} is the last ({result.EpochsRun}): nothing to restore");
        // The best is the history's highest validation, and the final model is that epoch's, not the last one's.
        var validations = result.History.Where(h => h.ValidMetric is not null).ToList();
        Assert.Equal(validations.Max(h => h.ValidMetric!.Value), result.BestValid["ndcg@20"], 12);
        Assert.True(validations[^1].ValidMetric!.Value < result.BestValid["ndcg@20"]);
        var eval = new FullRankingEvaluator(data);
        Assert.Equal(result.BestValid["ndcg@20"], eval.Evaluate(model, EvalSplit.Valid)["ndcg@20"], 12);
        using var loaded = ModelFile.Load(path, data, CPU);
        Assert.Equal(result.BestValid["ndcg@20"], eval.Evaluate(loaded, EvalSplit.Valid)["ndcg@20"], 12);
        Assert.True(result.History.Count(h => h.ValidMetric is not null) >= 2);
    }

    [Fact]
    public void LightGcn_trains_on_the_planted_structure()
    {
        var data = TestData.Clustered();
        using var model = new LightGcn(data.NumUsers, data.NumItems, 8, 2, data.Train);
        var eval = new FullRankingEvaluator(data);
        double before = eval.Evaluate(model, EvalSplit.Valid)["ndcg@20"];
        new Trainer(Quick with { LearningRate = 0.02 }).Fit(model, data);
        double after = eval.Evaluate(model, EvalSplit.Valid)["ndcg@20"];
        Assert.True(after > before + 0.2, $"valid ndcg@20 {before:F3} -> {after:F3}");
    }

    [Fact]
    public void Bpr_loss_matches_hand_computation()
    {
        // One user (1, 0), positive (2, 0), negatives (0, 1) and (1, 1): scores 2 vs 0 and 1.
        var lookup = EmbeddingLookup.Dense(tensor(new float[] { 1, 0 }, 1, 2), tensor(new float[] { 2, 0, 0, 1, 1, 1 }, 3, 2));
        var batch = new TrainingBatch(tensor(new long[] { 0 }), tensor(new long[] { 0 }), tensor(new long[] { 1, 2 }).view(1, 2), 1, 0);
        double expected = (Math.Log(1 + Math.Exp(-2)) + Math.Log(1 + Math.Exp(-1))) / 2;
        Assert.Equal(expected, Trainer.BprLoss(lookup, batch).item<float>(), 5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Bpr_loss_by_list_scores_equals_the_gather_route(bool handComputed)
    {
        // Whole tables scored in place (LightGCN's route) against gathers and a product (the dense baseline's).
        manual_seed(9);
        var users = handComputed ? tensor(new float[] { 1, 0 }, 1, 2) : randn(6, 5);
        var items = handComputed ? tensor(new float[] { 2, 0, 0, 1, 1, 1 }, 3, 2) : randn(9, 5);
        var batch = handComputed
            ? new TrainingBatch(tensor(new long[] { 0 }), tensor(new long[] { 0 }), tensor(new long[] { 1, 2 }).view(1, 2), 1, 0)
            : new TrainingBatch(tensor(new long[] { 0, 3, 3, 5 }), tensor(new long[] { 1, 8, 2, 2 }), tensor(new long[] { 4, 0, 7, 1, 2, 6, 8, 8 }).view(4, 2), 1, 0);
        var grads = new List<Tensor[]>();
        var values = new List<float>();
        foreach (bool lists in new[] { false, true })
        {
            var u = users.clone().requires_grad_(true);
            var i = items.clone().requires_grad_(true);
            var loss = Trainer.BprLoss(EmbeddingLookup.Dense(u, i, listScores: lists), batch);
            values.Add(loss.item<float>());
            loss.backward();
            grads.Add(new[] { u.grad!, i.grad! });
        }
        Assert.Equal(values[0], values[1], 5);
        Assert.True(allclose(grads[0][0], grads[1][0], rtol: 1e-5, atol: 1e-6));
        Assert.True(allclose(grads[0][1], grads[1][1], rtol: 1e-5, atol: 1e-6));
        if (handComputed) Assert.Equal((Math.Log(1 + Math.Exp(-2)) + Math.Log(1 + Math.Exp(-1))) / 2, values[1], 5);
    }

    [Fact]
    public void Row_sparse_lookup_gives_gradients_only_for_requested_rows()
    {
        var table = randn(10, 3);
        var lookup = EmbeddingLookup.RowSparse(table, randn(4, 3), tensor(new long[] { 7, 2, 7 }), tensor(new long[] { 1 }));
        var v = lookup.Users(tensor(new long[] { 7, 2, 7 }));
        Assert.True(allclose(v[0], table[7]));
        Assert.True(allclose(v[1], table[2]));
        v.sum().backward();
        Assert.Equal(new long[] { 2, 3 }, lookup.UserRows.grad!.shape);
        Assert.Equal(new long[] { 2, 7 }, lookup.UserRowIds!.data<long>().ToArray());
        // Row 7 was used twice, so its gradient is 2 per coordinate.
        Assert.Equal(new float[] { 1, 1, 1, 2, 2, 2 }, lookup.UserRows.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Sampler_draws_every_pair_once_with_unseen_negatives()
    {
        var data = TestData.Clustered();
        var sampler = new TrainingSampler(data);
        var s = sampler.Sample(new Random(1), negativesPerPair: 3);
        Assert.Equal(data.TrainCount, s.Count);
        var pairs = s.Users.Zip(s.Positives).Select(p => (p.First, p.Second)).ToHashSet();
        Assert.Equal(data.TrainCount, pairs.Count);
        for (int k = 0; k < s.Count; k++)
            for (int n = 0; n < 3; n++)
                Assert.DoesNotContain((int)s.Negatives[k * 3 + n], data.Train[s.Users[k]]);
        // Shuffled: not in user order.
        Assert.NotEqual(s.Users.Order().ToArray(), s.Users);
    }

    [Fact]
    public void Negatives_are_uniform_over_unseen_items()
    {
        var data = TestData.Clustered(users: 4, items: 12, groups: 2, perUser: 6);
        var sampler = new TrainingSampler(data);
        var rng = new Random(3);
        var counts = new int[data.NumItems];
        const int draws = 24000;
        for (int k = 0; k < draws; k++) counts[sampler.SampleNegative(0, rng)]++;
        int unseen = data.NumItems - data.Train[0].Length;
        double expected = (double)draws / unseen;
        double chi2 = 0;
        for (int i = 0; i < data.NumItems; i++)
        {
            if (data.Train[0].Contains(i)) Assert.Equal(0, counts[i]);
            else chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }
        // 99.9% quantile of chi-square with <= 11 degrees of freedom is about 31.3.
        Assert.True(chi2 < 31.3, $"chi2 {chi2:F1}");
    }
}
