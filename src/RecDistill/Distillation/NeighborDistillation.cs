using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

public enum NeighborMixing { Soft, Hard }

/// <summary>NKD settings (SPEC 4.1 and 6).</summary>
public sealed record NkdOptions
{
    public int Neighbors { get; init; } = 5;
    public double Alpha { get; init; } = 0.5;
    public NeighborMixing Mixing { get; init; } = NeighborMixing.Soft;
    public int Experts { get; init; } = 5;
    public double Dropout { get; init; } = 0.1;
    /// <summary>Teacher vectors are reduced to this many dimensions by PCA before the kNN search.</summary>
    public int PcaDim { get; init; } = 150;
    public double Lambda { get; init; } = 0.5;
}

/// <summary>
/// NKD, input layer: each distinct user and item of a batch is mixed with one of its teacher-space
/// nearest neighbours, in the student and in the teacher; a mean-of-experts projector maps the mixed
/// student vector to the teacher's space, and the loss is 1 - cosine to the mixed teacher vector.
/// </summary>
public sealed class NeighborDistillation : IDistillationMethod
{
    private readonly DistillationContext _ctx;
    private readonly NkdOptions _o;
    private readonly Tensor _userNeighbors, _itemNeighbors; // [U, K], [I, K]
    private Tensor? _users, _pos, _neg, _nUsers, _nPos, _nNeg;

    public NeighborDistillation(DistillationContext ctx, NkdOptions options)
    {
        if (options.Neighbors < 1) throw new ArgumentException("NKD needs at least one neighbour");
        if (options.Alpha is < 0 or > 1) throw new ArgumentException("NKD alpha must lie in [0, 1]");
        _ctx = ctx; _o = options;
        _userNeighbors = NearestNeighbors.Compute(ctx.Teacher.Users, options.Neighbors, options.PcaDim);
        _itemNeighbors = NearestNeighbors.Compute(ctx.Teacher.Items, options.Neighbors, options.PcaDim);
        int dT = ctx.Teacher.Dim;
        Projector = new ExpertProjector("nkd", ctx.StudentDim, dT, options.Experts, Math.Max(1, dT / 2), options.Dropout,
            ExpertCombination.MeanNormalized);
        Projector.to(ctx.Device);
        Projector.train();
    }

    public ExpertProjector Projector { get; }
    public string Name => "nkd";
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Projector.parameters();
    public IReadOnlyDictionary<string, double> EpochDiagnostics { get; } = new Dictionary<string, double>();
    public Tensor UserNeighbors => _userNeighbors;
    public Tensor ItemNeighbors => _itemNeighbors;

    public void OnEpochStart(int epoch, IRecommender student, Random rng) { }

    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _users = batch.DistinctUsers;
        _pos = batch.DistinctPositives;
        _neg = batch.DistinctNegatives;
        _nUsers = PickNeighbor(_userNeighbors, _users);
        _nPos = PickNeighbor(_itemNeighbors, _pos);
        _nNeg = PickNeighbor(_itemNeighbors, _neg);
        return (_nUsers, torch.cat(new[] { _nPos, _nNeg }));
    }

    private Tensor PickNeighbor(Tensor table, Tensor ids)
    {
        var pick = torch.randint(0, table.shape[1], new[] { ids.shape[0], 1L }, dtype: ScalarType.Int64, device: ids.device);
        return table.index_select(0, ids).gather(1, pick).squeeze(1);
    }

    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student) => Part(student, users: true).Plus(Part(student, users: false));

    /// <summary>Users and items (weight 0.5) as two terms: their projections and cosines are independent.</summary>
    public IReadOnlyList<LossTerm> Terms(TrainingBatch batch) =>
        [new LossTerm("nkd users", student => Part(student, users: true)), new LossTerm("nkd items", student => Part(student, users: false))];

    /// <summary>The weighted loss of the batch's distinct users, or of its distinct positive and negative items.</summary>
    private Tensor Part(EmbeddingLookup student, bool users)
    {
        var t = _ctx.Teacher;
        Tensor s, sn, own, neighbour;
        if (users) (s, sn, own, neighbour) = (student.Users(_users!), student.Users(_nUsers!), _users!, _nUsers!);
        else
        {
            s = torch.cat(new[] { student.Items(_pos!), student.Items(_neg!) });
            sn = torch.cat(new[] { student.Items(_nPos!), student.Items(_nNeg!) });
            own = torch.cat(new[] { _pos!, _neg! });
            neighbour = torch.cat(new[] { _nPos!, _nNeg! });
        }
        var table = users ? t.Users : t.Items;
        if (UseKernel && NeighborCosineLoss.Supports(s, table))
        {
            // The cosine does not see the projection's length: its normalisation is left out.
            var projected = Projector.ForwardDirection(Mix(s, sn));
            return NeighborCosineLoss.Compute(projected, t.Users, t.Items, own, neighbour, users ? own.shape[0] : 0, _o.Mixing, _o.Alpha, 0.5)
                   * FixedScalars.Of(_o.Lambda);
        }
        var p = Projector.forward(Mix(s, sn), null);
        var distance = FixedScalars.OneMinus(nn.functional.cosine_similarity(Mix(table.index_select(0, own), table.index_select(0, neighbour)), p, dim: 1));
        return distance.sum() * FixedScalars.Of(users ? _o.Lambda : 0.5 * _o.Lambda);
    }

    /// <summary>
    /// Whether the teacher side and the loss run as one C# function (<see cref="NeighborCosineLoss"/>, CPU)
    /// rather than as libtorch calls. Same noise, same value up to rounding; tests compare the two.
    /// </summary>
    public bool UseKernel { get; set; } = true;

    private Tensor Mix(Tensor own, Tensor neighbour)
    {
        if (_o.Mixing == NeighborMixing.Hard)
        {
            var keep = CounterRandom.Uniform(own.shape, 1, own.device).lt(FixedScalars.Of(_o.Alpha));
            return torch.where(keep, own, neighbour);
        }
        var r = CounterRandom.Uniform(own.shape, 2 * _o.Alpha, own.device);
        return (r * own).Plus(FixedScalars.OneMinus(r) * neighbour);
    }

    public void Dispose()
    {
        _userNeighbors.Dispose();
        _itemNeighbors.Dispose();
        Projector.Dispose();
    }
}

/// <summary>Euclidean k nearest neighbours (self excluded) after a PCA reduction, in row batches.</summary>
public static class NearestNeighbors
{
    public static Tensor Compute(Tensor vectors, int k, int pcaDim, long maxDistancesPerBatch = Evaluation.TopKRanking.DefaultMaxScoresPerBatch)
    {
        using var _ = torch.no_grad();
        int n = (int)vectors.shape[0];
        k = Math.Min(k, n - 1);
        if (k < 1) throw new ArgumentException("need at least two entities for a neighbour search");
        using var scope = torch.NewDisposeScope();
        var x = vectors - vectors.mean(new long[] { 0 }, keepdim: true);
        if (pcaDim > 0 && pcaDim < x.shape[1])
        {
            // Principal directions from the small d x d covariance (d = teacher dim).
            var cov = x.t().matmul(x);
            var (_, eigvec) = torch.linalg.eigh(cov);
            x = x.matmul(eigvec.narrow(1, eigvec.shape[1] - pcaDim, pcaDim));
        }
        // Nearest j for row i = largest 2 x_i.x_j - ||x_j||^2 (||x_i||^2 is the same along a row): a
        // ranking of [x, 1] against [2x, -||x||^2] with the row itself left out, so the neighbour search
        // runs through the same batched product and top-k selection as evaluation (ties: lower id).
        var ones = torch.ones(n, 1, dtype: x.dtype, device: x.device);
        var left = torch.cat(new[] { x, ones }, 1);
        var right = torch.cat(new[] { x * FixedScalars.Of(2), -(x * x).sum(new long[] { 1 }, keepdim: true) }, 1);
        var result = Evaluation.TopKRanking.Compute(left, right, row => new[] { row }, k, maxDistancesPerBatch);
        return result.MoveToOuterDisposeScope();
    }
}
