using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

/// <summary>Each baseline's loss against a direct computation of its formula on a tiny case.</summary>
public class BaselineLossTests
{
    private static (SplitDataset Data, FrozenTeacher Teacher, BprMf Student) Setup()
    {
        manual_seed(11);
        var data = TestData.Clustered(users: 30, items: 40);
        using var t = new BprMf(data.NumUsers, data.NumItems, 8, initStd: 0.5);
        return (data, FrozenTeacher.From(t), new BprMf(data.NumUsers, data.NumItems, 3, initStd: 0.5));
    }

    /// <summary>Runs the method on one batch: (distinct users, their item lists [n, m], the loss).</summary>
    private static (Tensor Users, Tensor Lists, double Loss) OneBatch(IDistillationMethod m, SplitDataset data, BprMf student)
    {
        m.OnEpochStart(1, student, new Random(1));
        var s = new TrainingSampler(data).Sample(new Random(2));
        int n = 48;
        var batch = TrainingBatch.Slice(s, 0, n, 1, 0);
        var (_, items) = m.ExtraIds(batch);
        var users = tensor(s.Users[..n].Distinct().Order().ToArray());
        var lookup = student.Lookup(users, torch.cat(new[] { batch.Positives, batch.Negatives.flatten(), items ?? batch.Positives }));
        double loss = m.Loss(batch, lookup).item<float>();
        return (users, items is null ? empty(0) : items.view(users.shape[0], -1), loss);
    }

    private static Tensor StudentScores(BprMf s, Tensor users, Tensor lists) =>
        torch.bmm(s.ItemWeight.detach().index_select(0, lists.flatten()).view(lists.shape[0], lists.shape[1], -1),
            s.UserWeight.detach().index_select(0, users).unsqueeze(-1)).squeeze(-1);

    [Fact]
    public void Kd_is_the_soft_label_cross_entropy_over_the_teacher_top_k()
    {
        var (data, teacher, student) = Setup();
        using var ctx = new DistillationContext(teacher, data, 3, CPU);
        using var kd = new KnowledgeDistillation(ctx, new KdOptions { K = 6, Tau = 2, Lambda = 0.7 });
        var (users, lists, loss) = OneBatch(kd, data, student);
        Assert.True(lists.eq(ctx.TeacherTopK(6).index_select(0, users)).all().item<bool>());
        var p = (teacher.Scores(users, lists) / FixedScalars.Of(2)).softmax(-1);
        var logq = (StudentScores(student, users, lists) / FixedScalars.Of(2)).log_softmax(-1);
        Assert.Equal(0.7 * -(p * logq).sum().item<float>(), loss, 3);
    }

    [Fact]
    public void Rd_weighs_teacher_top_items_by_exponential_rank()
    {
        var (data, teacher, student) = Setup();
        using var ctx = new DistillationContext(teacher, data, 3, CPU);
        using var rd = new RankingDistillation(ctx, new RdOptions { K = 4, T = 2, Lambda = 1 });
        var (users, lists, loss) = OneBatch(rd, data, student);
        Assert.True(lists.eq(ctx.TeacherTopK(4).index_select(0, users)).all().item<bool>()); // the teacher's top-4, in rank order
        var w = new[] { 0, 1, 2, 3 }.Select(r => Math.Exp(-r / 2.0)).ToArray();
        var z = w.Sum();
        var s = StudentScores(student, users, lists).data<float>().ToArray();
        double expected = 0;
        for (int k = 0; k < s.Length; k++) expected -= w[k % 4] / z * Math.Log(1 / (1 + Math.Exp(-s[k])));
        Assert.Equal(expected, loss, 3);
    }

    [Fact]
    public void Cd_samples_distinct_teacher_top_items_and_fits_shifted_sigmoid_targets()
    {
        var (data, teacher, student) = Setup();
        using var ctx = new DistillationContext(teacher, data, 3, CPU);
        using var cd = new CollaborativeDistillation(ctx, new CdOptions { L = 5, TopN = 12, T1 = 2, T2 = 0.5, Lambda = 1 });
        var (users, lists, loss) = OneBatch(cd, data, student);
        var top = ctx.TeacherTopK(12).index_select(0, users);
        for (int r = 0; r < users.shape[0]; r++)
        {
            var row = lists[r].data<long>().ToArray();
            Assert.Equal(row.Length, row.Distinct().Count());
            Assert.All(row, i =>
            {
                using Scalar id = i;
                Assert.True(top[r].eq(id).any().item<bool>());
            });
        }
        var target = (teacher.Scores(users, lists).Plus(FixedScalars.Of(0.5)) / FixedScalars.Of(2)).sigmoid();
        var sig = StudentScores(student, users, lists).sigmoid();
        var bce = -(target * sig.log()).Plus(FixedScalars.OneMinus(target) * FixedScalars.OneMinus(sig).log()).sum().item<float>();
        Assert.Equal(bce, loss, 2);
    }

    [Fact]
    public void Rrd_is_the_relaxed_plackett_luce_loss_in_teacher_order()
    {
        var (data, teacher, student) = Setup();
        using var ctx = new DistillationContext(teacher, data, 3, CPU);
        using var rrd = new RelaxedRankingDistillation(ctx, new RrdOptions { K = 4, L = 6, MxK = 10, T = 3, Lambda = 1 });
        var (users, lists, loss) = OneBatch(rrd, data, student);
        var top = ctx.TeacherTopK(10).index_select(0, users);
        var s = StudentScores(student, users, lists);
        double expected = 0;
        for (int r = 0; r < users.shape[0]; r++)
        {
            var row = lists[r].data<long>().ToArray();
            var teacherRow = top[r].data<long>().ToArray();
            var ranks = row.Take(4).Select(i => Array.IndexOf(teacherRow, i)).ToArray();
            Assert.All(ranks, k => Assert.True(k >= 0));
            Assert.Equal(ranks.Order(), ranks);                                 // kept in teacher order
            var sc = s[r].data<float>().ToArray();
            // Uninteresting draws that fall in the teacher's list do not count.
            var below = Enumerable.Range(4, 6).Where(j => !teacherRow.Contains(row[j])).Select(j => Math.Exp(sc[j])).Sum();
            for (int k = 0; k < 4; k++)
                expected += Math.Log(Enumerable.Range(k, 4 - k).Select(j => Math.Exp(sc[j])).Sum() + below) - sc[k];
        }
        Assert.Equal(expected, loss, 2);
    }

    [Theory]
    [InlineData(true, false)]  // the C# kernels (libtorch without AVX-512)
    [InlineData(false, false)] // libtorch: experts on their own rows, entity level per group (the CPU's)
    [InlineData(false, true)]  // libtorch: every expert on every row, same-group pairs (off the CPU)
    public void Htd_matches_entity_and_prototype_similarities_within_groups(bool kernel, bool dense)
    {
        var (data, teacher, student) = Setup();
        using var ctx = new DistillationContext(teacher, data, 3, CPU);
        using var kernels = KernelSwitch.Use(kernel);
        using var htd = new HierarchicalTopologyDistillation(ctx, new HtdOptions { Groups = 3, Alpha = 0.3 }) { SameGroupPairs = dense };
        htd.Projector.EveryExpertOnEveryRow = dense;
        htd.Projector.eval(); // deterministic selection
        manual_seed(5);
        var t = randn(9, 8);
        var s = randn(9, 3);
        var (proj, group) = htd.Projector.ForwardSelected(s, t);
        var g = group.data<long>().ToArray();
        double Cos(Tensor a, Tensor b) => nn.functional.cosine_similarity(a.unsqueeze(0), b.unsqueeze(0)).item<float>();
        double entity = 0, grp = 0;
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++)
                if (g[i] == g[j]) entity += Math.Pow(Cos(t[i], t[j]) - Cos(proj[i], proj[j]), 2);
        foreach (var c in g.Distinct())
        {
            var members = tensor(Enumerable.Range(0, 9).Where(i => g[i] == c).Select(i => (long)i).ToArray());
            var pt = t.index_select(0, members).mean(new long[] { 0 });
            var ps = proj.index_select(0, members).mean(new long[] { 0 });
            for (int i = 0; i < 9; i++) grp += Math.Pow(Cos(t[i], pt) - Cos(proj[i], ps), 2);
        }
        Assert.Equal(0.3 * entity + 0.7 * grp, htd.Topology(t, s).item<float>(), 3);
    }

    [Fact]
    public void Htd_group_blocks_from_d_by_d_products_equal_the_entity_by_entity_form()
    {
        manual_seed(6);
        // 50 members of dimension 8: past 2d, so the default is the d x d form.
        var tg = nn.functional.normalize(randn(50, 8), dim: 1);
        var s0 = nn.functional.normalize(randn(50, 8), dim: 1);
        var sDirect = s0.clone().requires_grad_(true);
        var sGram = s0.clone().requires_grad_(true);
        var direct = HierarchicalTopologyDistillation.GroupBlockLoss(tg, sDirect, gramForm: false);
        var gram = HierarchicalTopologyDistillation.GroupBlockLoss(tg, sGram);
        float a = direct.item<float>(), b = gram.item<float>();
        Assert.True(Math.Abs(a - b) <= 1e-5 * a, $"{a} against {b}");
        Assert.True(direct.item<float>() > 1, "a block with nothing to match");
        direct.backward();
        gram.backward();
        Assert.True(allclose(sDirect.grad!, sGram.grad!, rtol: 1e-4, atol: 1e-4));
    }
    [Theory]
    [InlineData(0)]  // one block
    [InlineData(64)] // rows in two blocks
    public void Htd_same_group_pairs_equal_the_per_group_form_in_value_and_gradient(long blockRows)
    {
        manual_seed(9);
        const int d = 24;
        // Groups of 0, 1, 2, 9 and 60 members (past 2d: the per-group form's d x d products), rows shuffled.
        var sizes = new long[] { 9, 0, 60, 1, 2 };
        int n = (int)sizes.Sum();
        var labels = Enumerable.Range(0, sizes.Length).SelectMany(g => Enumerable.Repeat((long)g, (int)sizes[g])).ToArray();
        var rng = new Random(4);
        labels = labels.OrderBy(_ => rng.Next()).ToArray();
        var t = randn(n, d) * RowScales(n);
        t[2] = zeros(d); // normalised to zeros, as libtorch does
        var p0 = randn(n, d);
        var group = tensor(labels);
        var (order, counts) = TensorOps.GroupByLabel(group, sizes.Length);
        var pGroups = p0.clone().requires_grad_(true);
        var pPairs = p0.clone().requires_grad_(true);
        var byGroups = HierarchicalTopologyDistillation.TopologyByGroups(t, pGroups, group, order, counts, 0.3);
        var byPairs = HierarchicalTopologyDistillation.TopologyBySameGroupPairs(t, pPairs, group, sizes.Length, 0.3, blockRows);
        float a = byGroups.item<float>(), b = byPairs.item<float>();
        Assert.True(a > 1, "groups with nothing to match");
        Assert.True(Math.Abs(a - b) <= 1e-5 * a, $"{a} against {b}");
        (byGroups * FixedScalars.Of(3)).backward();
        (byPairs * FixedScalars.Of(3)).backward();
        Assert.True(allclose(pGroups.grad!, pPairs.grad!, rtol: 1e-4, atol: 1e-5),
            $"largest gradient difference {(pGroups.grad! - pPairs.grad!).abs().max().item<float>()}");
    }

    /// <summary>A factor in [0.1, 3.1) per row: rows of unequal lengths.</summary>
    private static Tensor RowScales(int n) => (rand(n, 1) * FixedScalars.Of(3)).Plus(FixedScalars.Of(0.1));

    [Avx512Fact]
    public void Htd_topology_kernel_equals_the_libtorch_form_in_value_and_gradient()
    {
        Assert.True(TopologyLoss.Supports(zeros(1, 1), zeros(1, 1)));
        manual_seed(8);
        const int d = 40;
        // Groups of 0, 1, 2, 7, 70 (the n x n form in tiles of 32) and 90 members (past 2d: the d x d
        // form), rows shuffled among groups.
        var sizes = new long[] { 7, 0, 1, 90, 2, 70 };
        int n = (int)sizes.Sum();
        var labels = new long[n];
        int at = 0;
        for (int g = 0; g < sizes.Length; g++) for (int i = 0; i < sizes[g]; i++) labels[at++] = g;
        var rng = new Random(3);
        labels = labels.OrderBy(_ => rng.Next()).ToArray();
        // Raw rows of unequal lengths; one teacher row of zeros (normalised to zeros, as libtorch does).
        var t = randn(n, d) * RowScales(n);
        t[5] = zeros(d);
        var p0 = randn(n, d) * RowScales(n);
        var group = tensor(labels);
        var (order, counts) = TensorOps.GroupByLabel(group, sizes.Length);
        Assert.Equal(sizes, counts);

        var pRef = p0.clone().requires_grad_(true);
        var expected = HierarchicalTopologyDistillation.TopologyByGroups(t, pRef, group, order, counts, 0.3);
        (expected * FixedScalars.Of(3)).backward();
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = TestData.Threads(threads);
            var pKernel = p0.clone().requires_grad_(true);
            var loss = TopologyLoss.Compute(t, pKernel, order, counts, 0.3);
            float a = expected.item<float>(), b = loss.item<float>();
            Assert.True(a > 1, "groups with nothing to match");
            Assert.True(Math.Abs(a - b) <= 1e-5 * a, $"{a} against {b}");
            (loss * FixedScalars.Of(3)).backward();
            Assert.True(allclose(pRef.grad!, pKernel.grad!, rtol: 1e-4, atol: 1e-5),
                $"largest gradient difference {(pRef.grad! - pKernel.grad!).abs().max().item<float>()}");
        }
    }
}
