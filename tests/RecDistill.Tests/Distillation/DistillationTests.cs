using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

public class DistillationTests
{
    private static (SplitDataset Data, FrozenTeacher Teacher) Setup(int teacherDim = 16)
    {
        manual_seed(7);
        var data = TestData.Clustered(users: 40, items: 60);
        using var teacherModel = new BprMf(data.NumUsers, data.NumItems, teacherDim, initStd: 0.5);
        return (data, FrozenTeacher.From(teacherModel));
    }

    private static TrainingBatch Batch(SplitDataset data, int seed = 1)
    {
        var s = new TrainingSampler(data).Sample(new Random(seed));
        int n = 32;
        return TrainingBatch.Slice(s, 0, n, 1, 0);
    }

    [Fact]
    public void Soft_cross_entropy_hand_checked()
    {
        // Teacher softmax over logits [0, ln 3] is [1/4, 3/4]; the student's uniform: CE = ln 2.
        var ce = SoftLabelDistillation.SoftCrossEntropy(tensor(new float[] { 0, (float)Math.Log(3) }, 1, 2), zeros(1, 2), null, 1);
        Assert.Equal(Math.Log(2), ce.item<float>(), 5);
        // A masked entry takes no part: over one entry, CE = 0 whatever the logits.
        var masked = SoftLabelDistillation.SoftCrossEntropy(tensor(new float[] { 1, 5 }, 1, 2), tensor(new float[] { 3, -2 }, 1, 2),
            tensor(new[] { true, false }, 1, 2), 1);
        Assert.Equal(0, masked.item<float>(), 6);
        // Temperature divides both sides' logits.
        var t2 = SoftLabelDistillation.SoftCrossEntropy(tensor(new float[] { 0, 2 * (float)Math.Log(3) }, 1, 2), zeros(1, 2), null, 2);
        Assert.Equal(Math.Log(2), t2.item<float>(), 5);
    }

    [Fact]
    public void Rank_sampling_follows_its_weights_without_replacement()
    {
        manual_seed(1);
        var logw = tensor(new float[] { 0, (float)Math.Log(2), (float)Math.Log(3) }, 1, 3).expand(30000, 3).contiguous();
        var first = RankSampling.WithoutReplacement(logw, 1).flatten().data<long>().ToArray();
        var counts = new double[3];
        foreach (var p in first) counts[p]++;
        double[] expected = { 5000, 10000, 15000 };
        double chi2 = Enumerable.Range(0, 3).Sum(i => (counts[i] - expected[i]) * (counts[i] - expected[i]) / expected[i]);
        Assert.True(chi2 < 13.8, $"chi2 {chi2:F1} counts {string.Join(",", counts)}"); // 99.9% quantile, 2 dof
        var all = RankSampling.WithoutReplacement(logw.narrow(0, 0, 100), 3).data<long>().ToArray();
        for (int r = 0; r < 100; r++) Assert.Equal(3, all.Skip(3 * r).Take(3).Distinct().Count());
    }

    [Fact]
    public void Nearest_neighbours_exclude_self_and_are_nearest()
    {
        var points = tensor(new float[] { 0, 0, 1, 0, 3, 0, 10, 0, 10, 1 }, 5, 2);
        var nn = NearestNeighbors.Compute(points, 2, pcaDim: 0).data<long>().ToArray();
        Assert.Equal(new long[] { 1, 2 }, nn[0..2]);
        Assert.Equal(new long[] { 0, 2 }, nn[2..4]);
        Assert.Equal(new long[] { 4, 2 }, nn[6..8]);
        for (int i = 0; i < 5; i++) Assert.DoesNotContain((long)i, nn[(2 * i)..(2 * i + 2)]);
    }

    [Fact]
    public void Teacher_scores_of_long_lists_are_computed_in_user_chunks_with_the_same_values()
    {
        // 64-dim vectors and 200-item lists: about 80 users per chunk, so 200 users take three chunks.
        using var model = new BprMf(200, 300, 64, initStd: 0.5);
        using var teacher = FrozenTeacher.From(model);
        var users = randperm(200, generator: new TorchSharp.torch.Generator(7));
        var items = randint(0, 300, new long[] { 200, 200 }, generator: new TorchSharp.torch.Generator(8));
        var scores = teacher.Scores(users, items);
        var expected = (teacher.Users.index_select(0, users).unsqueeze(1)
            * teacher.Items.index_select(0, items.flatten()).view(200, 200, 64)).sum(new long[] { 2 });
        Assert.Equal(new long[] { 200, 200 }, scores.shape);
        Assert.True(allclose(scores, expected, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Nearest_neighbours_in_row_batches_match_brute_force()
    {
        var points = randn(37, 6, generator: new TorchSharp.torch.Generator(5));
        // 100 distances per batch: two rows at a time, so the batching and its offsets are exercised.
        var nn = NearestNeighbors.Compute(points, 3, pcaDim: 0, maxDistancesPerBatch: 100).data<long>().ToArray();
        var p = points.data<float>().ToArray();
        for (int i = 0; i < 37; i++)
        {
            var expected = Enumerable.Range(0, 37).Where(j => j != i)
                .OrderBy(j => Enumerable.Range(0, 6).Sum(c => (double)(p[i * 6 + c] - p[j * 6 + c]) * (p[i * 6 + c] - p[j * 6 + c])))
                .Take(3).Select(j => (long)j).ToArray();
            Assert.Equal(expected, nn[(3 * i)..(3 * i + 3)]);
        }
    }

    [Fact]
    public void Row_membership_equals_the_broadcast_comparison()
    {
        manual_seed(2);
        // 1,300 rows: more than one chunk of rows, so the stamps of a chunk start past row 0.
        var values = randint(0, 40, new long[] { 1300, 12 });
        var sets = randint(0, 40, new long[] { 1300, 7 });
        var expected = values.unsqueeze(2).eq(sets.unsqueeze(1)).any(2);
        var got = TensorOps.InRows(values, sets, 40);
        Assert.Equal(expected.data<bool>().ToArray(), got.data<bool>().ToArray());
        Assert.Contains(got.data<bool>().ToArray(), x => x);
        Assert.Contains(got.data<bool>().ToArray(), x => !x);
        Assert.Throws<ArgumentOutOfRangeException>(() => TensorOps.InRows(values, sets, 39));
    }

    // The interesting set's contents (the student's top list, duplicates masked) are checked against a
    // brute-force computation in FormulaTests; this test runs the term through the lookup and backward.
    [Fact]
    public void Sld_term_runs_through_the_lookup_and_reaches_the_student_rows()
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        using var sld = new SoftLabelDistillation(ctx, new SldOptions { K = 5, L = 6, MxK = 12 });
        sld.OnEpochStart(1, student, new Random(1));
        var (_, items) = sld.ExtraIds(Batch(data));
        Assert.NotNull(items);
        // The loss is finite, positive and reaches the student rows.
        var batch = Batch(data);
        sld.ExtraIds(batch);
        var lookup = student.Lookup(batch.Users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), sld.ExtraIds(batch).Items! }));
        var loss = sld.Loss(batch, lookup);
        Assert.True(loss.item<float>() > 0 && float.IsFinite(loss.item<float>()));
        loss.backward();
        Assert.True(lookup.UserRows.grad!.abs().sum().item<float>() > 0);
        Assert.InRange(sld.EpochDiagnostics["sld_overlap"], 0, 1);
    }

    [Theory]
    [InlineData(NeighborMixing.Soft)]
    [InlineData(NeighborMixing.Hard)]
    public void Nkd_kernel_equals_the_libtorch_path_in_value_and_gradients(NeighborMixing mixing)
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        using var nkd = new NeighborDistillation(ctx, new NkdOptions { Experts = 2, PcaDim = 8, Mixing = mixing });
        var batch = Batch(data);
        (float Loss, float[] Users, float[] Items, float[] Projector) Run(bool kernel)
        {
            using var kernels = KernelSwitch.Use(kernel);
            nkd.Projector.zero_grad();
            manual_seed(21); // the same neighbours, dropout masks and mixing noise on both paths
            var (xu, xi) = nkd.ExtraIds(batch);
            var lookup = student.Lookup(torch.cat(new[] { batch.Users, xu! }),
                torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), xi! }));
            var loss = nkd.Loss(batch, lookup);
            loss.backward();
            return (loss.item<float>(), lookup.UserRows.grad!.data<float>().ToArray(), lookup.ItemRows.grad!.data<float>().ToArray(),
                nkd.Projector.parameters().SelectMany(p => p.grad!.data<float>().ToArray()).ToArray());
        }
        var reference = Run(kernel: false);
        var fused = Run(kernel: true);
        Assert.True(reference.Loss > 0);
        Assert.Equal(reference.Loss, fused.Loss, 4);
        foreach (var (a, b) in new[] { (reference.Users, fused.Users), (reference.Items, fused.Items), (reference.Projector, fused.Projector) })
        {
            Assert.Equal(a.Length, b.Length);
            Assert.Contains(a, v => v != 0);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 + 1e-4 * Math.Abs(a[i]), $"element {i}: {a[i]} against {b[i]}");
        }
    }

    /// <summary>
    /// NKD's terms split the batch's users and items into row ranges: without noise (alpha 0 mixes each
    /// row wholly into its neighbour; no dropout in eval) any number of shards gives the loss and the
    /// gradients of one, on either path.
    /// </summary>
    [Theory]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(200, true)]
    [InlineData(3, false)]
    public void Nkd_shards_add_up_to_the_whole_batch(int shards, bool kernel)
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        var batch = Batch(data);
        (float Loss, float[] Users, float[] Items, float[] Projector, int Terms) Run(int count)
        {
            manual_seed(5);
            using var kernels = KernelSwitch.Use(kernel);
            using var nkd = new NeighborDistillation(ctx, new NkdOptions { Experts = 2, PcaDim = 8, Alpha = 0, Shards = count });
            nkd.Projector.eval();
            manual_seed(6);
            var (xu, xi) = nkd.ExtraIds(batch);
            var lookup = student.Lookup(torch.cat(new[] { batch.Users, xu! }), torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), xi! }));
            var terms = nkd.Terms(batch);
            var loss = terms.Select(t => t.Loss(lookup)).Aggregate((a, b) => a.Plus(b));
            loss.backward();
            return (loss.item<float>(), lookup.UserRows.grad!.data<float>().ToArray(), lookup.ItemRows.grad!.data<float>().ToArray(),
                nkd.Projector.parameters().SelectMany(p => p.grad!.data<float>().ToArray()).ToArray(), terms.Count);
        }
        var whole = Run(1);
        var split = Run(shards);
        Assert.Equal(1, whole.Terms);
        Assert.Equal(shards, split.Terms);
        Assert.True(whole.Loss > 0);
        Assert.Equal(whole.Loss, split.Loss, whole.Loss * 1e-5);
        foreach (var (a, b) in new[] { (whole.Users, split.Users), (whole.Items, split.Items), (whole.Projector, split.Projector) })
        {
            Assert.Contains(a, v => v != 0);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-6 + 1e-4 * Math.Abs(a[i]), $"element {i}: {a[i]} against {b[i]}");
        }
    }

    /// <summary>CPD's two terms (feature loss, regulariser) are the parts of its loss with their weights.</summary>
    [Theory]
    [InlineData(PreferenceRegularizer.Listwise)]
    [InlineData(PreferenceRegularizer.Pairwise)]
    [InlineData(PreferenceRegularizer.None)]
    public void Cpd_terms_are_its_weighted_loss_parts(PreferenceRegularizer kind)
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        var options = new CpdOptions { Experts = 3, Regularizer = kind, Q = 4, TopN = 10, Lambda = 0.3, AlphaC = 0.2 };
        using var cpd = new ConsistentPreferenceDistillation(ctx, options);
        cpd.Projector.eval(); // no Gumbel noise: the terms and the parts project alike
        cpd.OnEpochStart(1, student, new Random(1));
        var batch = Batch(data);
        var (_, xi) = cpd.ExtraIds(batch);
        var lookup = student.Lookup(batch.Users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), (xi ?? batch.Positives).flatten() }));
        var terms = cpd.Terms(batch);
        var (feature, reg) = cpd.LossParts(batch, lookup);
        Assert.Equal(kind == PreferenceRegularizer.None ? 1 : 2, terms.Count);
        Assert.Equal(feature.item<float>() * 0.3, terms[0].Loss(lookup).item<float>(), feature.item<float>() * 1e-6);
        if (reg is not null)
        {
            Assert.True(reg.item<float>() > 0);
            Assert.Equal(reg.item<float>() * 0.3 * 0.2, terms[1].Loss(lookup).item<float>(), reg.item<float>() * 1e-6);
        }
        // The regulariser's term leaves the student alone; the feature term moves it.
        if (terms.Count == 2)
        {
            terms[1].Loss(lookup).backward();
            Assert.True(lookup.UserRows.grad is null || lookup.UserRows.grad.abs().sum().item<float>() == 0);
        }
        terms[0].Loss(lookup).backward();
        Assert.True(lookup.UserRows.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Nkd_cosine_kernel_matches_its_formula_for_unnormalised_rows()
    {
        manual_seed(4);
        var users = randn(6, 5);
        var items = randn(9, 5);
        var own = tensor(new long[] { 0, 3, 5, 1, 8, 2 });
        var neighbour = tensor(new long[] { 2, 3, 7, 0, 4, 6 });
        // Two users, four items, rows of any length: the gradient's radial part counts here.
        var p0 = randn(6, 5) * FixedScalars.Of(3);
        var pKernel = p0.clone().requires_grad_(true);
        manual_seed(9);
        var loss = NeighborCosineLoss.Compute(pKernel, users, items, own, neighbour, 2, NeighborMixing.Soft, 0.5, 0.5);
        loss.backward();

        manual_seed(9); // the same seed, so the same noise r ~ U(0, 1)
        var r = CounterRandom.Uniform(new long[] { 6, 5 }, 1.0, CPU);
        var t = torch.cat(new[] { users.index_select(0, own.narrow(0, 0, 2)), items.index_select(0, own.narrow(0, 2, 4)) });
        var tn = torch.cat(new[] { users.index_select(0, neighbour.narrow(0, 0, 2)), items.index_select(0, neighbour.narrow(0, 2, 4)) });
        var pRef = p0.clone().requires_grad_(true);
        var cos = nn.functional.cosine_similarity((r * t).Plus(FixedScalars.OneMinus(r) * tn), pRef, dim: 1);
        var expected = (FixedScalars.OneMinus(cos) * tensor(new float[] { 1, 1, 0.5f, 0.5f, 0.5f, 0.5f })).sum();
        expected.backward();
        Assert.Equal(expected.item<float>(), loss.item<float>(), 4); // float32 reference: about 1e-7 relative
        Assert.True(allclose(pRef.grad!, pKernel.grad!, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void Cpd_regularisers_move_only_the_projector()
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        foreach (var kind in new[] { PreferenceRegularizer.Pairwise, PreferenceRegularizer.Listwise, PreferenceRegularizer.Hybrid })
        {
            using var cpd = new ConsistentPreferenceDistillation(ctx, new CpdOptions { Experts = 3, Regularizer = kind });
            cpd.OnEpochStart(1, student, new Random(1));
            var batch = Batch(data);
            var (xu, xi) = cpd.ExtraIds(batch);
            var lookup = student.Lookup(batch.Users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), (xi ?? batch.Positives).flatten() }));
            var (_, reg) = cpd.LossParts(batch, lookup);
            Assert.NotNull(reg);
            reg!.backward();
            Assert.True(lookup.UserRows.grad is null || lookup.UserRows.grad.abs().sum().item<float>() == 0, $"{kind} moved user rows");
            Assert.True(lookup.ItemRows.grad is null || lookup.ItemRows.grad.abs().sum().item<float>() == 0, $"{kind} moved item rows");
            Assert.Contains(cpd.Parameters, p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
            Assert.InRange(cpd.InconsistencyRate, 0, 1);
        }
    }

    [Fact]
    public void Cpd_listwise_regulariser_matches_its_formula()
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        var options = new CpdOptions { Experts = 3, Regularizer = PreferenceRegularizer.Listwise, Q = 4, TopN = 10 };
        using var cpd = new ConsistentPreferenceDistillation(ctx, options);
        cpd.Projector.eval(); // the selection without Gumbel noise: the same projection in both computations
        cpd.OnEpochStart(1, student, new Random(1));
        var batch = Batch(data);
        var (_, xi) = cpd.ExtraIds(batch);
        var lookup = student.Lookup(batch.Users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), xi!.flatten() }));
        var (_, reg) = cpd.LossParts(batch, lookup);

        using var _ = no_grad();
        var (su, si) = student.FinalEmbeddings();
        double expected = 0;
        foreach (long u in batch.Users.unique().Item1.data<long>().ToArray())
        {
            var items = cpd.ListItems!.select(0, u);                                             // [Q]
            var sq = si.index_select(0, items);
            var pu = cpd.Projector.forward(su[u].unsqueeze(0), teacher.Users[u].unsqueeze(0));   // [1, d_T]
            var pq = cpd.Projector.forward(sq, teacher.Items.index_select(0, items));
            var raw = sq.matmul(su[u]) / FixedScalars.Of(options.Tau);
            var proj = pq.matmul(pu.squeeze(0)) / FixedScalars.Of(options.Tau);
            expected += -(raw.softmax(0) * proj.log_softmax(0)).sum().item<float>();
        }
        Assert.True(expected > 0);
        Assert.Equal(expected, reg!.item<float>(), 3);
    }

    [Fact]
    public void Cpd_feature_loss_moves_the_student_and_the_projector()
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        using var cpd = new ConsistentPreferenceDistillation(ctx, new CpdOptions { Experts = 3 });
        cpd.OnEpochStart(1, student, new Random(1));
        var batch = Batch(data);
        var (_, xi) = cpd.ExtraIds(batch);
        var lookup = student.Lookup(batch.Users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), xi!.flatten() }));
        var (feature, _) = cpd.LossParts(batch, lookup);
        feature.backward();
        Assert.True(lookup.UserRows.grad!.abs().sum().item<float>() > 0);
        Assert.Contains(cpd.Parameters, p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
    }

    /// <summary>Inside a loss term's scope the projector computes with the term's copies of its parameters, every one of them.</summary>
    [Theory]
    [InlineData(ExpertCombination.MeanNormalized)]
    [InlineData(ExpertCombination.TeacherGumbelSelection)]
    public void Projector_reads_its_parameters_through_the_terms_copies(ExpertCombination combination)
    {
        manual_seed(2);
        using var p = new ExpertProjector("p", 3, 5, 4, 6, 0.1, combination);
        var parameters = p.parameters().Cast<Tensor>().ToList();
        var copies = parameters.Select(q => q.detach().requires_grad_(true)).ToList();
        using (ParameterAliases.Use(parameters, copies))
            p.forward(randn(7, 3), randn(7, 5)).Squared().sum().backward();
        Assert.Equal(combination == ExpertCombination.MeanNormalized ? 4 : 6, parameters.Count);
        Assert.All(parameters, q => Assert.Null(q.grad));
        Assert.All(copies, c => Assert.True(c.grad is not null && c.grad.abs().sum().item<float>() > 0));
    }

    [Fact]
    public void Selection_projector_value_is_the_chosen_experts_output()
    {
        manual_seed(2);
        using var p = new ExpertProjector("p", 3, 5, 4, 6, 0.0, ExpertCombination.TeacherGumbelSelection);
        var s = randn(7, 3);
        var t = randn(7, 5);
        var experts = Enumerable.Range(0, 4).Select(e => p.ExpertOutput(e, s)).ToArray();
        // Eval: each row takes the expert its selection net scores highest (W t + b, no noise), and its
        // output is that expert's output (the gate's scale is exactly 1 in value).
        p.eval();
        var selector = p.parameters().ToList();
        var w = selector.Single(x => x.shape.SequenceEqual(new long[] { 4, 5 }));
        var bias = selector.Single(x => x.shape.SequenceEqual(new long[] { 4 }));
        var want = t.matmul(w.t()).Plus(bias).argmax(-1).data<long>().ToArray();
        var (a, chosen) = p.ForwardSelected(s, t);
        Assert.Equal(want, chosen.data<long>().ToArray());
        for (int r = 0; r < 7; r++) Assert.True(allclose(experts[want[r]][r], a[r], rtol: 1e-5, atol: 1e-6));
        Assert.True(allclose(a, p.forward(s, t)));
        // Training: Gumbel noise picks the expert; each row is still the output of the one it picked.
        p.train();
        var (c, picked) = p.ForwardSelected(s, t);
        Assert.Equal(new long[] { 7, 5 }, c.shape);
        var pickedRows = picked.data<long>().ToArray();
        for (int r = 0; r < 7; r++) Assert.True(allclose(experts[pickedRows[r]][r], c[r], rtol: 1e-5, atol: 1e-6));
        p.eval();
        using var mean = new ExpertProjector("m", 3, 5, 2, 4, 0.0, ExpertCombination.MeanNormalized);
        var m = mean.forward(s, null);
        Assert.True(allclose(m.Squared().sum(1).sqrt(), ones(7), atol: 1e-5));
        var expected = nn.functional.normalize(mean.ExpertOutput(0, s).Plus(mean.ExpertOutput(1, s)) / FixedScalars.Of(2), p: 2, dim: -1);
        Assert.True(allclose(m, expected, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData("kd")]
    [InlineData("rd")]
    [InlineData("cd")]
    [InlineData("de")]
    [InlineData("rrd")]
    [InlineData("htd")]
    [InlineData("nkd")]
    [InlineData("cpd")]
    [InlineData("sld")]
    [InlineData("mkd")]
    public void Distillation_trains_the_student_and_leaves_the_teacher_bit_identical(string method)
    {
        var (data, teacher) = Setup();
        var usersBefore = teacher.Users.clone();
        var itemsBefore = teacher.Items.clone();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        var options = DistillationOptions.Defaults(method, Backbone.Bpr) with
        {
            Nkd = new NkdOptions { Experts = 2, PcaDim = 8 },
            Cpd = new CpdOptions { Experts = 3, TopN = 20 },
            Sld = new SldOptions { K = 5, L = 5, MxK = 15, Lambda = 1 },
        };
        using var kd = DistillationMethods.Create(options, ctx)!;
        using var student = new BprMf(data.NumUsers, data.NumItems, 4);
        var before = student.UserWeight.detach().clone();
        var result = new Trainer(new TrainOptions { MaxEpochs = 2, EvalEvery = 1, BatchSize = 64, LearningRate = 0.01, Seed = 3 })
            .Fit(student, data, kd);
        Assert.Equal(2, result.EpochsRun);
        Assert.All(result.History, h => Assert.True(double.IsFinite(h.Loss)));
        Assert.False(student.UserWeight.detach().eq(before).all().item<bool>());
        Assert.True(teacher.Users.eq(usersBefore).all().item<bool>());
        Assert.True(teacher.Items.eq(itemsBefore).all().item<bool>());
    }

    [Fact]
    public void Mkd_switches_drop_parts()
    {
        var (data, teacher) = Setup();
        using var ctx = new DistillationContext(teacher, data, 4, CPU);
        var o = DistillationOptions.Defaults("mkd", Backbone.Bpr) with { UseCpd = false, Nkd = new NkdOptions { PcaDim = 8 } };
        using var kd = (CompositeDistillation)DistillationMethods.Create(o, ctx)!;
        Assert.Equal(new[] { "nkd", "sld" }, kd.Parts.Select(p => p.Name));
        Assert.Throws<ArgumentException>(() => DistillationMethods.Create(o with { UseNkd = false, UseSld = false }, ctx));
    }
}
