using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

/// <summary>
/// MKD's parts (SPEC 4.1) against their formulas computed here on plain arrays in double precision,
/// on tiny hand-made cases. Where a method draws random numbers, the draw is pinned (large selection
/// margins, one neighbour list read back) or read back from the method (SLD's J_u, NKD's picks), or
/// repeated from the same seed (NKD's mixing noise and dropout masks, which are inputs here, not the
/// formula under test).
/// </summary>
public class FormulaTests
{
    /// <summary>float32 against double: the methods' values agree to this relative error.</summary>
    private const double Rel = 1e-5;

    private static void Close(double expected, double actual, string what)
    {
        Assert.True(double.IsFinite(actual), $"{what}: {actual}");
        Assert.True(Math.Abs(expected - actual) <= Rel * Math.Abs(expected), $"{what}: expected {expected:R}, got {actual:R}");
    }

    private static SplitDataset Dataset(int items, int[][] train) => new()
    {
        Name = "formula",
        UserIds = Enumerable.Range(0, train.Length).Select(u => u.ToString()).ToArray(),
        ItemIds = Enumerable.Range(0, items).Select(i => i.ToString()).ToArray(),
        Train = train,
        Valid = train.Select(_ => Array.Empty<int>()).ToArray(),
        Test = train.Select(_ => Array.Empty<int>()).ToArray(),
    };

    /// <summary>rows x d standard normal values times scale, from a seeded System.Random (independent of libtorch).</summary>
    private static float[] Gaussian(Random rng, int rows, int d, double scale) =>
        Enumerable.Range(0, rows * d).Select(_ =>
            (float)(scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToArray();

    private static double[] Row(float[] table, int d, long r) => Enumerable.Range(0, d).Select(c => (double)table[r * d + c]).ToArray();

    private static double Dot(double[] a, double[] b) => a.Select((x, k) => x * b[k]).Sum();

    private static double Norm(double[] a) => Math.Sqrt(Dot(a, a));

    private static TrainingBatch Batch(long[] users, long[] positives, long[] negatives) =>
        new(tensor(users), tensor(positives), tensor(negatives).view(users.Length, 1), 1, 0);

    /// <summary>Items of u ranked by score, best first (ties: lower id), u's train items left out.</summary>
    private static int[] Ranking(Func<int, double> score, int items, int[] train) =>
        Enumerable.Range(0, items).Where(i => !train.Contains(i)).OrderByDescending(score).ThenBy(i => i).ToArray();

    /// <summary>-sum_k softmax(t / tau)_k log softmax(s / tau)_k over the given logits.</summary>
    private static double SoftCrossEntropy(double[] teacher, double[] student, double tau)
    {
        double tMax = teacher.Max() / tau, sMax = student.Max() / tau;
        double tSum = teacher.Sum(x => Math.Exp(x / tau - tMax));
        double sLog = sMax + Math.Log(student.Sum(x => Math.Exp(x / tau - sMax)));
        return -teacher.Select((x, k) => Math.Exp(x / tau - tMax) / tSum * (student[k] / tau - sLog)).Sum();
    }

    private static void SetParameter(nn.Module module, string name, float[] values)
    {
        var named = module.named_parameters().ToList();
        var p = named.Where(q => q.name.TrimStart('_') == name).Select(q => q.parameter).SingleOrDefault()
                ?? throw new ArgumentException($"no parameter {name} among {string.Join(", ", named.Select(q => q.name))}");
        Assert.Equal(values.Length, p.numel());
        using var _ = no_grad();
        p.copy_(tensor(values).view(p.shape));
    }

    /// <summary>The experts' weights as set here: dropout -> linear(d_S, H) -> ReLU -> dropout -> linear(H, d_T).</summary>
    private sealed record Experts(int E, int DS, int H, int DT, float[] W1, float[] B1, float[] W2, float[] B2)
    {
        public static Experts Draw(Random rng, int e, int dS, int h, int dT) =>
            new(e, dS, h, dT, Gaussian(rng, e * dS, h, 0.8), Gaussian(rng, e, h, 0.3), Gaussian(rng, e * h, dT, 0.8), Gaussian(rng, e, dT, 0.3));

        public void Into(ExpertProjector p)
        {
            SetParameter(p, "w1", W1); SetParameter(p, "b1", B1); SetParameter(p, "w2", W2); SetParameter(p, "b2", B2);
        }

        /// <summary>Expert e on s; inMask [d_S] and hiddenMask [H] are the dropout masks' values (null: none).</summary>
        public double[] Output(int e, double[] s, double[]? inMask = null, double[]? hiddenMask = null)
        {
            var h = new double[H];
            for (int j = 0; j < H; j++)
            {
                double z = B1[e * H + j];
                for (int a = 0; a < DS; a++) z += s[a] * (inMask?[a] ?? 1) * W1[(e * DS + a) * H + j];
                h[j] = Math.Max(0, z) * (hiddenMask?[j] ?? 1);
            }
            var y = new double[DT];
            for (int c = 0; c < DT; c++)
            {
                y[c] = B2[e * DT + c];
                for (int j = 0; j < H; j++) y[c] += h[j] * W2[(e * H + j) * DT + c];
            }
            return y;
        }
    }

    // ---------------------------------------------------------------- SLD

    /// <summary>
    /// SLD's loss per SPEC 4.1: per batch user, (1 - w) CE over S_u + w CE over J_u plus the teacher's
    /// top-K items in neither J_u nor S_u, w = exp(-beta |T_u ∩ J_u| / K), summed, times lambda.
    /// J_u is a random draw: it is read back from the method (ExtraIds) and checked to lie in the
    /// student's top-mxK; S_u and T_u are recomputed here by brute-force ranking.
    /// </summary>
    [Fact]
    public void Sld_loss_is_the_overlap_weighted_cross_entropy_over_the_student_and_teacher_sets()
    {
        const int U = 4, I = 10, dT = 3, dS = 2, K = 3, L = 4, MxK = 6;
        const double tau = 2, beta = 3, lambda = 0.7;
        var rng = new Random(5);
        var train = new[] { new[] { 0 }, new[] { 1, 5 }, new[] { 7 }, new[] { 2, 3, 9 } };
        var data = Dataset(I, train);
        var tu = Gaussian(rng, U, dT, 1); var ti = Gaussian(rng, I, dT, 1);
        var su = Gaussian(rng, U, dS, 1); var si = Gaussian(rng, I, dS, 1);
        using var teacher = new FrozenTeacher(tensor(tu).view(U, dT), tensor(ti).view(I, dT), Backbone.Bpr);
        using var ctx = new DistillationContext(teacher, data, dS, CPU);
        using var student = new BprMf(U, I, dS);
        student.Load(su, si);
        using var sld = new SoftLabelDistillation(ctx, new SldOptions { K = K, L = L, MxK = MxK, T = 10, Tau = tau, Beta = beta, Lambda = lambda });
        var batch = Batch(new long[] { 3, 0, 1, 0, 2 }, new long[] { 2, 0, 1, 0, 7 }, new long[] { 4, 6, 8, 9, 1 });
        var users = new[] { 0, 1, 2, 3 }; // the batch's distinct users, sorted

        double TeacherScore(int u, int i) => Dot(Row(tu, dT, u), Row(ti, dT, i));
        double StudentScore(int u, int i) => Dot(Row(su, dS, u), Row(si, dS, i));
        bool sawTeacherItemInSOnly = false, sawPartialOverlap = false;
        var overlaps = new List<double>();
        for (int epoch = 1; epoch <= 6; epoch++)
        {
            manual_seed(100 + epoch);
            sld.OnEpochStart(epoch, student, new Random(epoch));
            var ids = sld.ExtraIds(batch).Items!.data<long>().Select(x => (int)x).ToArray();
            Assert.Equal(users.Length * (K + L + K), ids.Length);
            var lookup = EmbeddingLookup.Dense(student.UserWeight, student.ItemWeight);
            double loss = sld.Loss(batch, lookup).item<float>();

            double expected = 0, overlapSum = 0;
            for (int r = 0; r < users.Length; r++)
            {
                int u = users[r];
                var studentTop = Ranking(i => StudentScore(u, i), I, train[u]).Take(MxK).ToArray();
                var teacherTop = Ranking(i => TeacherScore(u, i), I, train[u]).Take(K).ToArray();
                var s = studentTop.Take(K).ToArray();
                var j = ids.Skip(users.Length * K + r * (L + K)).Take(L).ToArray();
                Assert.Equal(s, ids.Skip(r * K).Take(K));                                   // S_u: the student's top-K
                Assert.Equal(teacherTop, ids.Skip(users.Length * K + r * (L + K) + L).Take(K)); // T_u after J_u
                Assert.Equal(L, j.Distinct().Count());
                Assert.All(j, i => Assert.Contains(i, studentTop));                          // J_u from the student's top-mxK
                double o = teacherTop.Count(j.Contains) / (double)K;
                double w = Math.Exp(-beta * o);
                var tSet = j.Concat(teacherTop.Where(i => !j.Contains(i) && !s.Contains(i))).ToArray();
                double lossS = SoftCrossEntropy(s.Select(i => TeacherScore(u, i)).ToArray(), s.Select(i => StudentScore(u, i)).ToArray(), tau);
                double lossT = SoftCrossEntropy(tSet.Select(i => TeacherScore(u, i)).ToArray(), tSet.Select(i => StudentScore(u, i)).ToArray(), tau);
                expected += (1 - w) * lossS + w * lossT;
                overlapSum += o;
                sawTeacherItemInSOnly |= teacherTop.Any(i => s.Contains(i) && !j.Contains(i));
                sawPartialOverlap |= o > 0 && o < 1;
            }
            Close(lambda * expected, loss, $"epoch {epoch} loss");
            Close(overlapSum / users.Length, sld.EpochDiagnostics["sld_overlap"], $"epoch {epoch} overlap"); // every user is in the batch
            overlaps.Add(overlapSum);
        }
        // The cases that tell the formula's branches apart did occur.
        Assert.True(sawTeacherItemInSOnly, "no teacher item sat in S_u but outside J_u");
        Assert.True(sawPartialOverlap, "no overlap strictly between 0 and 1");
        Assert.True(overlaps.Distinct().Count() > 1, "J_u was the same every epoch");
    }

    /// <summary>
    /// SLD's draw of J_u (SPEC 4.1): position p of the student's top-mxK is drawn with weight
    /// exp((1 + c_p) / T), c_p = teacher top-K items at student positions >= p. Three thousand users with
    /// the same vectors each draw one position (L = 1); the counts are tested against those weights.
    /// </summary>
    [Fact]
    public void Sld_draws_positions_by_the_teacher_items_at_or_below_them()
    {
        const int U = 3000, I = 6, K = 2, T = 1;
        // Student scores 6, 5, ..., 1: the student ranks items in id order, so position = item id.
        var su = Enumerable.Range(0, U).SelectMany(_ => new[] { 1f, 0f }).ToArray();
        var si = Enumerable.Range(0, I).SelectMany(i => new[] { 6f - i, 0f }).ToArray();
        // The teacher's top-2 are items 2 and 4: c_p = 2, 2, 2, 1, 1, 0.
        var ti = new float[] { 0.1f, 0, 0.2f, 0, 10, 0, 0.3f, 0, 9, 0, 0.4f, 0 };
        var tu = Enumerable.Range(0, U).SelectMany(_ => new[] { 1f, 0f }).ToArray();
        var data = Dataset(I, Enumerable.Range(0, U).Select(_ => Array.Empty<int>()).ToArray());
        using var teacher = new FrozenTeacher(tensor(tu).view(U, 2), tensor(ti).view(I, 2), Backbone.Bpr);
        using var ctx = new DistillationContext(teacher, data, 2, CPU);
        using var student = new BprMf(U, I, 2);
        student.Load(su, si);
        using var sld = new SoftLabelDistillation(ctx, new SldOptions { K = K, L = 1, MxK = I, T = T });
        manual_seed(3);
        sld.OnEpochStart(1, student, new Random(1));
        var all = Enumerable.Range(0, U).Select(u => (long)u).ToArray();
        var ids = sld.ExtraIds(Batch(all, new long[U], new long[U])).Items!.data<long>().ToArray();
        var counts = new double[I];
        for (int r = 0; r < U; r++) counts[ids[U * K + r * (1 + K)]]++;
        var c = new[] { 2, 2, 2, 1, 1, 0 };
        var weight = c.Select(x => Math.Exp((1.0 + x) / T)).ToArray();
        double chi2 = Enumerable.Range(0, I).Sum(p =>
        {
            double e = U * weight[p] / weight.Sum();
            return (counts[p] - e) * (counts[p] - e) / e;
        });
        Assert.True(chi2 < 20.5, $"chi2 {chi2:F1} (5 dof, 99.9% quantile 20.5), counts {string.Join(", ", counts)}");
    }

    // ---------------------------------------------------------------- CPD

    /// <summary>
    /// CPD's loss per SPEC 4.1: lambda (L_feat + alpha_C R), L_feat = sum ||t - P(s)||^2 over the batch's
    /// distinct users + 0.5 x its distinct items, R pairwise (-log sigmoid of the product of the projected and
    /// raw score differences, per batch triple), listwise (cross entropy from softmax(&lt;s_u, s_q&gt; / tau) to
    /// softmax(&lt;P s_u, P s_q&gt; / tau) over u's list) or both; and the inconsistency rate. P is one
    /// expert chosen by the selection net on the teacher vector: the two logits lie over 90 apart, beyond
    /// the reach of the Gumbel noise (under 27 between two draws), so the training-mode selection is the
    /// argmax computed here.
    /// </summary>
    [Theory]
    [InlineData(PreferenceRegularizer.None, true)]
    [InlineData(PreferenceRegularizer.None, false)]
    [InlineData(PreferenceRegularizer.Pairwise, true)]
    [InlineData(PreferenceRegularizer.Pairwise, false)]
    [InlineData(PreferenceRegularizer.Listwise, true)]
    [InlineData(PreferenceRegularizer.Listwise, false)]
    [InlineData(PreferenceRegularizer.Hybrid, true)]
    [InlineData(PreferenceRegularizer.Hybrid, false)]
    public void Cpd_loss_is_its_feature_loss_plus_its_weighted_regulariser(PreferenceRegularizer kind, bool kernel)
    {
        const int U = 3, I = 5, dS = 2, dT = 3, E = 2, H = (dS + dT) / 2, Q = 2, TopN = 3;
        const double tau = 0.5, alphaC = 0.3, lambda = 0.4;
        var tu = new float[] { 1.0f, 0.2f, -0.3f, -0.4f, 0.6f, 0.5f, 0.3f, -0.5f, 0.8f };
        var ti = new float[] { 0.5f, -0.2f, 0.1f, -0.3f, 0.4f, -0.6f, 0.9f, 0.1f, 0.4f, 0.0f, 0.7f, 0.2f, -0.6f, -0.1f, 0.3f };
        var rng = new Random(8);
        var su = Gaussian(rng, U, dS, 0.7); var si = Gaussian(rng, I, dS, 0.7);
        var experts = Experts.Draw(rng, E, dS, H, dT);
        // Logit difference 200 (t_0 - t_1) + 10 t_2 + 1: every vector here has |t_0 - t_1| >= 0.5, so it is 96 or more.
        var selW = new float[] { 100, -100, 5, -100, 100, -5 };
        var selB = new float[] { 0.5f, -0.5f };
        var train = new[] { new[] { 0, 3 }, new[] { 1 }, new[] { 2, 4 } };
        using var teacher = new FrozenTeacher(tensor(tu).view(U, dT), tensor(ti).view(I, dT), Backbone.Bpr);
        using var ctx = new DistillationContext(teacher, Dataset(I, train), dS, CPU);
        using var student = new BprMf(U, I, dS);
        student.Load(su, si);
        var options = new CpdOptions { Experts = E, Regularizer = kind, AlphaC = alphaC, Q = Q, Tau = tau, TopN = TopN, T = 10, Lambda = lambda };
        using var kernels = KernelSwitch.Use(kernel);
        using var cpd = new ConsistentPreferenceDistillation(ctx, options);
        experts.Into(cpd.Projector);
        SetParameter(cpd.Projector, "selector.weight", selW);
        SetParameter(cpd.Projector, "selector.bias", selB);
        manual_seed(4);
        cpd.OnEpochStart(1, student, new Random(1));
        long[] bu = { 0, 1, 2, 0 }, bp = { 0, 1, 2, 3 }, bn = { 2, 3, 0, 1 };
        var batch = Batch(bu, bp, bn);
        cpd.ExtraIds(batch);
        var lookup = EmbeddingLookup.Dense(student.UserWeight, student.ItemWeight);
        manual_seed(5);
        double loss = cpd.Loss(batch, lookup).item<float>();

        var selected = new List<int>();
        double[] P(double[] s, double[] t)
        {
            var logits = Enumerable.Range(0, E).Select(e => selB[e] + Enumerable.Range(0, dT).Sum(c => selW[e * dT + c] * t[c])).ToArray();
            int e = Array.IndexOf(logits, logits.Max());
            selected.Add(e);
            return experts.Output(e, s);
        }
        double[] S(bool user, long id) => user ? Row(su, dS, id) : Row(si, dS, id);
        double[] Tv(bool user, long id) => user ? Row(tu, dT, id) : Row(ti, dT, id);
        double[] Proj(bool user, long id) => P(S(user, id), Tv(user, id));
        double SquaredDistance(double[] a, double[] b) => a.Select((x, k) => (x - b[k]) * (x - b[k])).Sum();

        double feature = new long[] { 0, 1, 2 }.Sum(u => SquaredDistance(Tv(true, u), Proj(true, u)))
                        + 0.5 * new long[] { 0, 1, 2, 3 }.Sum(i => SquaredDistance(Tv(false, i), Proj(false, i)));
        Assert.Contains(0, selected);
        Assert.Contains(1, selected); // both experts take part

        double pairwise = 0;
        int inconsistent = 0;
        for (int k = 0; k < bu.Length; k++)
        {
            double raw = Dot(S(true, bu[k]), S(false, bp[k])) - Dot(S(true, bu[k]), S(false, bn[k]));
            var pu = Proj(true, bu[k]);
            double proj = Dot(pu, Proj(false, bp[k])) - Dot(pu, Proj(false, bn[k]));
            pairwise += Math.Log(1 + Math.Exp(-raw * proj)); // -log sigmoid(x)
            if (Math.Sign(raw) * Math.Sign(proj) < 0) inconsistent++;
        }
        Assert.InRange(inconsistent, 1, bu.Length - 1); // both orders occur, so the rate is exercised
        Assert.Equal((double)inconsistent / bu.Length, cpd.InconsistencyRate, 12);

        double listwise = 0;
        if (kind is PreferenceRegularizer.Listwise or PreferenceRegularizer.Hybrid)
        {
            var lists = cpd.ListItems!.data<long>().ToArray();
            for (int u = 0; u < U; u++)
            {
                var list = lists.Skip(u * Q).Take(Q).ToArray();
                var teacherTop = Ranking(i => Dot(Row(tu, dT, u), Row(ti, dT, i)), I, train[u]).Take(TopN).ToArray();
                Assert.Equal(Q, list.Distinct().Count());
                Assert.All(list, i => Assert.Contains((int)i, teacherTop));
                var pu = Proj(true, u);
                listwise += SoftCrossEntropy(list.Select(i => Dot(S(true, u), S(false, i))).ToArray(),
                    list.Select(i => Dot(pu, Proj(false, i))).ToArray(), tau);
            }
        }
        double reg = kind switch
        {
            PreferenceRegularizer.None => 0,
            PreferenceRegularizer.Pairwise => pairwise,
            PreferenceRegularizer.Listwise => listwise,
            _ => pairwise + listwise,
        };
        Close(lambda * (feature + alphaC * reg), loss, $"{kind} loss");
        // Each part on its own, so that a part with a small share cannot hide in the total.
        manual_seed(5);
        var (f, r) = cpd.LossParts(batch, lookup);
        Close(feature, f.item<float>(), "feature loss");
        if (kind == PreferenceRegularizer.None) Assert.Null(r);
        else Close(reg, r!.item<float>(), $"{kind} regulariser");
    }

    // ---------------------------------------------------------------- NKD

    /// <summary>Eigenvalues and unit eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi rotations.</summary>
    private static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        var a = (double[,])matrix.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++) for (int q = p + 1; q < n; q++) off += a[p, q] * a[p, q];
            if (off < 1e-28) break;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                {
                    if (a[p, q] == 0) continue;
                    // The rotation in the (p, q) plane that zeroes a[p, q].
                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double t = (theta >= 0 ? 1 : -1) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        (double kp, double kq) = (a[k, p], a[k, q]);
                        a[k, p] = c * kp - s * kq; a[k, q] = s * kp + c * kq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        (double pk, double qk) = (a[p, k], a[q, k]);
                        a[p, k] = c * pk - s * qk; a[q, k] = s * pk + c * qk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        (double kp, double kq) = (v[k, p], v[k, q]);
                        v[k, p] = c * kp - s * kq; v[k, q] = s * kp + c * kq;
                    }
                }
        }
        var values = Enumerable.Range(0, n).Select(i => a[i, i]).ToArray();
        // The decomposition is checked here, so that an error in it cannot pass for one in the code under test.
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
            {
                double mv = Enumerable.Range(0, n).Sum(k => matrix[i, k] * v[k, j]);
                Assert.True(Math.Abs(mv - values[j] * v[i, j]) < 1e-9 * (1 + Math.Abs(values[j])), "Jacobi did not converge");
            }
        return (values, v);
    }

    /// <summary>
    /// The k nearest rows (Euclidean, self excluded, nearest first) after centring and projecting on the
    /// top pcaDim principal directions; also the neighbours without the PCA, and the smallest relative gap
    /// between consecutive distances up to the (k+1)-th (a near tie could go either way in float32).
    /// Distances within the principal subspace do not depend on the eigenvectors' signs (nor on a rotation
    /// within the subspace), so the sign ambiguity of PCA does not reach the neighbour lists.
    /// </summary>
    private static (int[][] Pca, int[][] Raw, double Gap) Neighbours(float[] table, int n, int d, int k, int pcaDim)
    {
        var x = Enumerable.Range(0, n).Select(r => Row(table, d, r)).ToArray();
        var mean = Enumerable.Range(0, d).Select(c => x.Average(r => r[c])).ToArray();
        var centred = x.Select(r => r.Select((v, c) => v - mean[c]).ToArray()).ToArray();
        var scatter = new double[d, d];
        for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) scatter[a, b] = centred.Sum(r => r[a] * r[b]);
        var (values, vectors) = SymmetricEigen(scatter);
        var top = Enumerable.Range(0, d).OrderByDescending(j => values[j]).Take(pcaDim).ToArray();
        var sorted = values.OrderByDescending(v => v).ToArray();
        Assert.True(sorted[pcaDim - 1] - sorted[pcaDim] > 1e-3 * sorted[0], "the principal subspace is not well defined");
        var reduced = centred.Select(r => top.Select(j => Enumerable.Range(0, d).Sum(c => r[c] * vectors[c, j])).ToArray()).ToArray();
        double gap = double.MaxValue;
        int[][] Knn(double[][] points)
        {
            return Enumerable.Range(0, n).Select(i =>
            {
                var order = Enumerable.Range(0, n).Where(j => j != i)
                    .Select(j => (j, dist: points[i].Select((v, c) => (v - points[j][c]) * (v - points[j][c])).Sum()))
                    .OrderBy(p => p.dist).ThenBy(p => p.j).ToArray();
                for (int m = 1; m <= k && m < order.Length; m++) gap = Math.Min(gap, (order[m].dist - order[m - 1].dist) / order[m].dist);
                return order.Take(k).Select(p => p.j).ToArray();
            }).ToArray();
        }
        var pca = Knn(reduced);
        double pcaGap = gap;
        return (pca, Knn(x), pcaGap);
    }

    /// <summary>
    /// NKD per SPEC 4.1, whole: neighbours by Euclidean kNN on the PCA-reduced teacher vectors (checked
    /// against a PCA computed here by Jacobi rotations, on vectors where the PCA changes the lists); one
    /// neighbour per distinct user, positive and negative item (the picks are read back and checked to be
    /// among the kNN); mixing s' = r s + (1 - r) s_n (soft, r ~ U(0, 2 alpha)) or own-or-neighbour (hard,
    /// own where U(0, 1) &lt; alpha) on both sides; the mean-of-experts projector with dropout before each
    /// linear; lambda x sum w (1 - cos(t', P(s'))), w 1 for users and 0.5 for items. The mixing noise and
    /// dropout masks are drawn again from the same seed, in the order NKD draws them.
    /// </summary>
    [Theory]
    [InlineData(NeighborMixing.Soft, 0.0, true)]
    [InlineData(NeighborMixing.Soft, 0.0, false)]
    [InlineData(NeighborMixing.Soft, 0.3, true)]
    [InlineData(NeighborMixing.Soft, 0.3, false)]
    [InlineData(NeighborMixing.Hard, 0.0, true)]
    [InlineData(NeighborMixing.Hard, 0.3, false)]
    public void Nkd_loss_is_the_weighted_cosine_distance_of_neighbour_mixed_vectors(NeighborMixing mixing, double dropout, bool kernel)
    {
        const int U = 7, I = 8, dS = 2, dT = 4, K = 2, PcaDim = 2, E = 2, H = dT / 2;
        const double alpha = 0.5, lambda = 0.7;
        var rng = new Random(12);
        // Teacher vectors with unequal spreads along directions mixed across coordinates: the PCA keeps
        // two of the four and changes some neighbour lists.
        var mixer = Gaussian(rng, dT, dT, 1);
        float[] Teacher(int rows)
        {
            var z = Gaussian(rng, rows, dT, 1);
            var scale = new[] { 3.0, 2.0, 1.2, 0.9 };
            return Enumerable.Range(0, rows * dT).Select(x =>
                (float)Enumerable.Range(0, dT).Sum(c => z[x / dT * dT + c] * scale[c] * mixer[c * dT + x % dT])).ToArray();
        }
        var tu = Teacher(U); var ti = Teacher(I);
        var su = Gaussian(rng, U, dS, 1); var si = Gaussian(rng, I, dS, 1);
        var experts = Experts.Draw(rng, E, dS, H, dT);
        var (userKnn, userRaw, userGap) = Neighbours(tu, U, dT, K, PcaDim);
        var (itemKnn, itemRaw, itemGap) = Neighbours(ti, I, dT, K, PcaDim);
        Assert.True(Math.Min(userGap, itemGap) > 1e-3, "a near tie in the neighbour lists");
        Assert.True(userKnn.Zip(userRaw).Any(p => !p.First.SequenceEqual(p.Second)), "the PCA changes no user's neighbours");
        Assert.True(itemKnn.Zip(itemRaw).Any(p => !p.First.SequenceEqual(p.Second)), "the PCA changes no item's neighbours");

        using var teacher = new FrozenTeacher(tensor(tu).view(U, dT), tensor(ti).view(I, dT), Backbone.Bpr);
        using var ctx = new DistillationContext(teacher, Dataset(I, Enumerable.Range(0, U).Select(_ => Array.Empty<int>()).ToArray()), dS, CPU);
        var options = new NkdOptions { Neighbors = K, Alpha = alpha, Mixing = mixing, Experts = E, Dropout = dropout, PcaDim = PcaDim, Lambda = lambda, Shards = 1 };
        using var kernels = KernelSwitch.Use(kernel);
        using var nkd = new NeighborDistillation(ctx, options);
        experts.Into(nkd.Projector);
        for (int u = 0; u < U; u++) Assert.Equal(userKnn[u], nkd.UserNeighbors[u].data<long>().Select(x => (int)x));
        for (int i = 0; i < I; i++) Assert.Equal(itemKnn[i], nkd.ItemNeighbors[i].data<long>().Select(x => (int)x));

        // Items 3 and 5 are both a positive and a negative: they count once in each list.
        var batch = Batch(new long[] { 4, 0, 4, 6, 0 }, new long[] { 3, 5, 1, 3, 7 }, new long[] { 5, 0, 3, 2, 0 });
        long[] own = { 0, 4, 6, /* positives */ 1, 3, 5, 7, /* negatives */ 0, 2, 3, 5 };
        int nU = 3, n = own.Length;
        manual_seed(9);
        nkd.OnEpochStart(1, null!, new Random(1));
        var (pickedUsers, pickedItems) = nkd.ExtraIds(batch);
        var picks = pickedUsers!.data<long>().Concat(pickedItems!.data<long>()).ToArray();
        for (int r = 0; r < n; r++) Assert.Contains((int)picks[r], r < nU ? userKnn[own[r]] : itemKnn[own[r]]);
        var lookup = EmbeddingLookup.Dense(tensor(su).view(U, dS).requires_grad_(true), tensor(si).view(I, dS).requires_grad_(true));
        manual_seed(10);
        double loss = nkd.Loss(batch, lookup).item<float>();

        // The same draws again: student noise, each expert's input mask, the hidden mask, teacher noise.
        manual_seed(10);
        double high = mixing == NeighborMixing.Soft ? 2 * alpha : 1;
        var rS = CounterRandom.Uniform(new long[] { n, dS }, high, CPU).data<float>().ToArray();
        var inMasks = Enumerable.Range(0, E).Select(_ => dropout > 0 ? CounterRandom.Dropout(ones(n, dS), dropout).data<float>().ToArray() : null).ToArray();
        var hiddenMask = dropout > 0 ? CounterRandom.Dropout(ones(n, E * H), dropout).data<float>().ToArray() : null;
        var rT = CounterRandom.Uniform(new long[] { n, dT }, high, CPU).data<float>().ToArray();
        if (dropout > 0) Assert.Contains(0f, hiddenMask!); // some units are dropped

        double[] Mix(double[] a, double[] b, float[] r, int row) => a.Select((x, c) =>
        {
            double rc = r[row * a.Length + c];
            return mixing == NeighborMixing.Soft ? rc * x + (1 - rc) * b[c] : rc < alpha ? x : b[c];
        }).ToArray();
        double expected = 0;
        for (int r = 0; r < n; r++)
        {
            bool user = r < nU;
            var (s, sn) = user ? (Row(su, dS, own[r]), Row(su, dS, picks[r])) : (Row(si, dS, own[r]), Row(si, dS, picks[r]));
            var (t, tn) = user ? (Row(tu, dT, own[r]), Row(tu, dT, picks[r])) : (Row(ti, dT, own[r]), Row(ti, dT, picks[r]));
            var mixed = Mix(s, sn, rS, r);
            var p = new double[dT];
            for (int e = 0; e < E; e++)
            {
                var y = experts.Output(e, mixed, inMasks[e]?.Skip(r * dS).Take(dS).Select(v => (double)v).ToArray(),
                    hiddenMask?.Skip(r * E * H + e * H).Take(H).Select(v => (double)v).ToArray());
                for (int c = 0; c < dT; c++) p[c] += y[c] / E;
            }
            var target = Mix(t, tn, rT, r);
            expected += (user ? 1 : 0.5) * (1 - Dot(target, p) / (Norm(target) * Norm(p)));
        }
        Close(lambda * expected, loss, $"{mixing} NKD loss");
    }

    // ---------------------------------------------------------------- MKD

    /// <summary>
    /// MKD (SPEC 4.1): the composite's loss is lambda_N L_NKD + lambda_C L_CPD + lambda_S L_SLD, each L
    /// from the part run alone (lambda 1) on the same batch, weights and draws, over exactly the parts
    /// the ablation switches leave on; the terms the trainer uses add up to the same.
    /// </summary>
    [Theory]
    [InlineData(true, true, true)]
    [InlineData(false, true, true)]
    [InlineData(true, false, true)]
    [InlineData(true, true, false)]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(false, false, true)]
    public void Mkd_is_the_lambda_weighted_sum_of_the_parts_it_keeps(bool useNkd, bool useCpd, bool useSld)
    {
        const double lambdaN = 0.3, lambdaC = 0.7, lambdaS = 2.0;
        manual_seed(13);
        var data = TestData.Clustered(users: 12, items: 16);
        using var teacherModel = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        using var teacher = FrozenTeacher.From(teacherModel);
        using var ctx = new DistillationContext(teacher, data, 2, CPU);
        using var student = new BprMf(data.NumUsers, data.NumItems, 2, initStd: 0.5);
        var nkdOptions = new NkdOptions { Experts = 2, PcaDim = 3, Neighbors = 2, Lambda = 1 };
        var cpdOptions = new CpdOptions { Experts = 2, TopN = 5, Q = 3, Regularizer = PreferenceRegularizer.Hybrid, Lambda = 1 };
        var sldOptions = new SldOptions { K = 3, L = 3, MxK = 6, Lambda = 1 };
        var o = DistillationOptions.Defaults("mkd", Backbone.Bpr) with
        {
            Nkd = nkdOptions with { Lambda = lambdaN }, Cpd = cpdOptions with { Lambda = lambdaC }, Sld = sldOptions with { Lambda = lambdaS },
            UseNkd = useNkd, UseCpd = useCpd, UseSld = useSld,
        };
        using var mkd = (CompositeDistillation)DistillationMethods.Create(o, ctx)!;
        var kept = new[] { (useNkd, "nkd", lambdaN), (useCpd, "cpd", lambdaC), (useSld, "sld", lambdaS) }.Where(p => p.Item1).ToArray();
        Assert.Equal(kept.Select(p => p.Item2), mkd.Parts.Select(p => p.Name));
        var alone = kept.Select(p => DistillationMethods.Create(new DistillationOptions
            { Method = p.Item2, Nkd = nkdOptions, Cpd = cpdOptions, Sld = sldOptions }, ctx)!).ToList();
        try
        {
            // The same projector weights as the composite's parts.
            using (no_grad())
                for (int k = 0; k < alone.Count; k++)
                    foreach (var (mine, theirs) in alone[k].Parameters.Zip(mkd.Parts[k].Parameters)) mine.copy_(theirs);
            var batch = TrainingBatch.Slice(new TrainingSampler(data).Sample(new Random(2)), 0, 24, 1, 0);
            var lookup = EmbeddingLookup.Dense(student.UserWeight, student.ItemWeight);
            // Each phase from one seed, the parts in the composite's order: the same draws either way.
            double[] Run(IReadOnlyList<IDistillationMethod> methods)
            {
                manual_seed(21);
                foreach (var m in methods) m.OnEpochStart(1, student, new Random(1));
                manual_seed(22);
                foreach (var m in methods) m.ExtraIds(batch);
                manual_seed(23);
                return methods.Select(m => (double)m.Loss(batch, lookup).item<float>()).ToArray();
            }
            var parts = Run(alone);
            Assert.All(parts, l => Assert.True(l > 0, "a part with nothing to add"));
            double total = Run(new[] { mkd })[0];
            Close(kept.Select((p, k) => p.Item3 * parts[k]).Sum(), total, "MKD loss");

            // The trainer's terms, computed in order from the same seed, add up to the same loss.
            manual_seed(23);
            double terms = mkd.Terms(batch).Sum(t => (double)t.Loss(lookup).item<float>());
            Close(total, terms, "MKD terms");
        }
        finally
        {
            foreach (var m in alone) m.Dispose();
        }
    }

    [Fact]
    public void Mkd_with_every_part_switched_off_is_refused()
    {
        manual_seed(13);
        var data = TestData.Clustered(users: 12, items: 16);
        using var teacherModel = new BprMf(data.NumUsers, data.NumItems, 4, initStd: 0.5);
        using var teacher = FrozenTeacher.From(teacherModel);
        using var ctx = new DistillationContext(teacher, data, 2, CPU);
        var o = DistillationOptions.Defaults("mkd", Backbone.Bpr) with { UseNkd = false, UseCpd = false, UseSld = false };
        Assert.Throws<ArgumentException>(() => DistillationMethods.Create(o, ctx));
    }
}
