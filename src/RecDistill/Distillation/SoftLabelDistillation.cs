using RecDistill.Evaluation;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>SLD settings (SPEC 4.1 and 6).</summary>
public sealed record SldOptions
{
    /// <summary>Length K of the teacher's top list T_u and of the student's S_u (50).</summary>
    public int K { get; init; } = 50;
    /// <summary>Size L of the interesting set J_u (50).</summary>
    public int L { get; init; } = 50;
    /// <summary>Length mxK of the student's top list J_u is drawn from (200).</summary>
    public int MxK { get; init; } = 200;
    /// <summary>Temperature T of J_u's sampling weights exp((1 + c_p) / T) (10).</summary>
    public double T { get; init; } = 10;
    /// <summary>Softmax temperature: 1 for BPR, 10 for LightGCN.</summary>
    public double Tau { get; init; } = 1;
    /// <summary>Overlap weight: 3 for BPR, 5 for LightGCN.</summary>
    public double Beta { get; init; } = 3;
    /// <summary>Weight lambda_S of the SLD loss (500).</summary>
    public double Lambda { get; init; } = 500;

    /// <summary>SPEC's settings for a backbone: tau 10 and beta 5 for LightGCN, the defaults (tau 1, beta 3) otherwise.</summary>
    public static SldOptions For(Backbone b) => b == Backbone.LightGcn ? new SldOptions { Tau = 10, Beta = 5 } : new SldOptions();
}

/// <summary>
/// SLD, output layer: soft labels on the student's own top-K (S_u) and on an "interesting" set
/// J_u sampled from the student's top-mxK near the teacher's top-K items, mixed per user by the
/// overlap between J_u and the teacher's top-K.
/// </summary>
public sealed class SoftLabelDistillation : IDistillationMethod
{
    private readonly DistillationContext _ctx;
    private readonly SldOptions _o;
    private Tensor? _s, _set, _setMask, _w, _teacherS, _teacherSet;
    private Tensor? _batchUsers;
    private double _overlapMean;

    /// <summary>SLD on the context's teacher; throws <see cref="ArgumentException"/> unless K and L are at least 1 and mxK at least both.</summary>
    public SoftLabelDistillation(DistillationContext ctx, SldOptions options)
    {
        if (options.K < 1 || options.L < 1 || options.MxK < Math.Max(options.K, options.L))
            throw new ArgumentException("SLD needs K >= 1, L >= 1 and mxK >= max(K, L)");
        _ctx = ctx; _o = options;
    }

    /// <inheritdoc/>
    public string Name => "sld";
    /// <summary>None: SLD trains no parameters of its own.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Array.Empty<TorchSharp.Modules.Parameter>();
    /// <summary>sld_overlap: the mean over users of the overlap o_u, as of this epoch's lists.</summary>
    public IReadOnlyDictionary<string, double> EpochDiagnostics => new Dictionary<string, double> { ["sld_overlap"] = _overlapMean };

    /// <summary>From the current student: its top-mxK, S_u, J_u, the T-set, the weights w_u and the teacher's scores on S_u and the T-set.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        DisposeEpochState();
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var data = _ctx.Data;
        int k = Math.Min(_o.K, data.NumItems), mx = Math.Min(_o.MxK, data.NumItems), l = Math.Min(_o.L, mx);
        var teacherTop = _ctx.TeacherTopK(k);                                     // [U, K]
        var (su, si) = student.FinalEmbeddings();
        var studentTop = TopKRanking.Compute(su, si, data.Train, mx);             // [U, mxK]
        var s = studentTop.narrow(1, 0, k);
        // c_p: teacher-top items at student positions >= p (capped at K); favoured positions sit at or above them.
        var inTeacher = TensorOps.InRows(studentTop, teacherTop, data.NumItems).to(ScalarType.Float32); // [U, mxK]
        var fromEnd = inTeacher.flip(1).cumsum(1).flip(1).clamp_max(FixedScalars.Of(k));
        var positions = RankSampling.WithoutReplacement(fromEnd.Plus(FixedScalars.One) / FixedScalars.Of(_o.T), l);
        var j = studentTop.gather(1, positions);                                  // [U, L]
        var teacherInJ = TensorOps.InRows(teacherTop, j, data.NumItems);           // [U, K]
        var teacherInS = TensorOps.InRows(teacherTop, s, data.NumItems);
        var overlap = teacherInJ.to(ScalarType.Float32).sum(1) / FixedScalars.Of(k);
        var set = torch.cat(new[] { j, teacherTop }, 1);                          // [U, L + K]
        var mask = torch.cat(new[] { torch.ones_like(j, dtype: ScalarType.Bool), teacherInJ.logical_or(teacherInS).logical_not() }, 1);
        var users = FixedScalars.Arange(data.NumUsers, ScalarType.Int64, _ctx.Device);
        _s = s.clone().MoveToOuterDisposeScope();
        _set = set.MoveToOuterDisposeScope();
        _setMask = mask.MoveToOuterDisposeScope();
        _w = (overlap * FixedScalars.Of(-_o.Beta)).exp().MoveToOuterDisposeScope();
        _teacherS = _ctx.Teacher.Scores(users, s).MoveToOuterDisposeScope();
        _teacherSet = _ctx.Teacher.Scores(users, set).MoveToOuterDisposeScope();
        _overlapMean = overlap.mean().item<float>();
        su.Dispose(); si.Dispose();
    }

    /// <summary>The items of S_u and of the T-set of the batch's distinct users.</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _batchUsers = batch.DistinctUsers;
        var items = torch.cat(new[] { _s!.index_select(0, _batchUsers).flatten(), _set!.index_select(0, _batchUsers).flatten() });
        return (null, items);
    }

    /// <summary>sum over the batch's distinct users of (1 - w) CE_S + w CE_T, times lambda_S.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        var users = _batchUsers ?? batch.DistinctUsers;
        var mask = _setMask!.index_select(0, users);
        var studentS = student.ListScores(users, _s!.index_select(0, users));      // [n, K]
        var studentSet = student.ListScores(users, _set!.index_select(0, users));  // [n, L + K]
        var lossS = SoftCrossEntropy(_teacherS!.index_select(0, users), studentS, null, _o.Tau);
        var lossT = SoftCrossEntropy(_teacherSet!.index_select(0, users), studentSet, mask, _o.Tau);
        var w = _w!.index_select(0, users);
        return (FixedScalars.OneMinus(w) * lossS).Plus(w * lossT).sum() * FixedScalars.Of(_o.Lambda);
    }

    /// <summary>Per row: cross entropy from softmax(teacher / tau) to softmax(student / tau) over the unmasked entries.</summary>
    public static Tensor SoftCrossEntropy(Tensor teacherLogits, Tensor studentLogits, Tensor? mask, double tau)
    {
        var t = teacherLogits / FixedScalars.Of(tau);
        var s = studentLogits / FixedScalars.Of(tau);
        if (mask is not null)
        {
            var off = mask.logical_not();
            t = t.masked_fill(off, FixedScalars.NegativeInfinity);
            s = s.masked_fill(off, FixedScalars.NegativeInfinity);
        }
        var p = t.softmax(-1);
        var logq = s.log_softmax(-1);
        if (mask is not null) logq = logq.masked_fill(mask.logical_not(), FixedScalars.Zero);
        return -(p * logq).sum(-1);
    }

    private void DisposeEpochState()
    {
        foreach (var t in new[] { _s, _set, _setMask, _w, _teacherS, _teacherSet }) t?.Dispose();
    }

    /// <summary>Frees the epoch's lists and scores.</summary>
    public void Dispose() => DisposeEpochState();
}
