using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>How NKD mixes a vector with its neighbour's.</summary>
public enum NeighborMixing
{
    /// <summary>r x own + (1 - r) x neighbour, r drawn per coordinate from U(0, 2 alpha).</summary>
    Soft,
    /// <summary>Per coordinate, the own value with probability alpha, else the neighbour's.</summary>
    Hard,
}

/// <summary>NKD settings (SPEC 4.1 and 6).</summary>
public sealed record NkdOptions
{
    /// <summary>Nearest neighbours K per user and per item in the teacher's space (5).</summary>
    public int Neighbors { get; init; } = 5;
    /// <summary>Mixing parameter alpha in [0, 1] (0.5): see <see cref="NeighborMixing"/>.</summary>
    public double Alpha { get; init; } = 0.5;
    /// <summary>Soft or hard mixing (soft).</summary>
    public NeighborMixing Mixing { get; init; } = NeighborMixing.Soft;
    /// <summary>Number of experts E of the projector (5).</summary>
    public int Experts { get; init; } = 5;
    /// <summary>Dropout before each of the experts' linear layers (0.1).</summary>
    public double Dropout { get; init; } = 0.1;
    /// <summary>Teacher vectors are reduced to this many dimensions by PCA before the kNN search.</summary>
    public int PcaDim { get; init; } = 150;
    /// <summary>Weight lambda_N of the NKD loss (0.5).</summary>
    public double Lambda { get; init; } = 0.5;
    /// <summary>
    /// The batch's rows (distinct users, then distinct positive and negative items) are split into this
    /// many loss terms of about equal size, so that two cores can share them (a term's projector pass
    /// and cosines depend on its own rows only). Each term draws its own noise: another count gives
    /// other draws, the same expected loss.
    /// </summary>
    public int Shards { get; init; } = 2;
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
    private Tensor? _users, _items, _nUsers, _nItems; // the batch's distinct users; its distinct positives then negatives

    /// <summary>
    /// Finds the teacher's user and item neighbours (PCA, then kNN) and builds the projector; throws
    /// <see cref="ArgumentException"/> for no neighbour or shard, or alpha outside [0, 1].
    /// </summary>
    public NeighborDistillation(DistillationContext ctx, NkdOptions options)
    {
        if (options.Neighbors < 1) throw new ArgumentException("NKD needs at least one neighbour");
        if (options.Alpha is < 0 or > 1) throw new ArgumentException("NKD alpha must lie in [0, 1]");
        if (options.Shards < 1) throw new ArgumentException("NKD needs at least one shard");
        _ctx = ctx; _o = options;
        _userNeighbors = NearestNeighbors.Compute(ctx.Teacher.Users, options.Neighbors, options.PcaDim);
        _itemNeighbors = NearestNeighbors.Compute(ctx.Teacher.Items, options.Neighbors, options.PcaDim);
        int dT = ctx.Teacher.Dim;
        Projector = new ExpertProjector("nkd", ctx.StudentDim, dT, options.Experts, Math.Max(1, dT / 2), options.Dropout,
            ExpertCombination.MeanNormalized);
        Projector.to(ctx.Device);
        Projector.train();
    }

    /// <summary>The projector: the mean of experts d_S -> d_T / 2 -> d_T, L2-normalised.</summary>
    public ExpertProjector Projector { get; }
    /// <inheritdoc/>
    public string Name => "nkd";
    /// <summary>The projector's parameters.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Projector.parameters();
    /// <summary>Empty: NKD reports no diagnostics.</summary>
    public IReadOnlyDictionary<string, double> EpochDiagnostics { get; } = new Dictionary<string, double>();
    /// <summary>Each user's nearest users in the teacher's space [U, K], nearest first.</summary>
    public Tensor UserNeighbors => _userNeighbors;
    /// <summary>Each item's nearest items in the teacher's space [I, K], nearest first.</summary>
    public Tensor ItemNeighbors => _itemNeighbors;

    /// <summary>Nothing: the neighbours are found once, when the method is created.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng) { }

    /// <summary>Draws one neighbour for each of the batch's distinct users and items: those neighbours are the extra ids.</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _users = batch.DistinctUsers;
        _items = torch.cat(new[] { batch.DistinctPositives, batch.DistinctNegatives });
        _nUsers = PickNeighbor(_userNeighbors, _users);
        _nItems = PickNeighbor(_itemNeighbors, _items);
        return (_nUsers, _nItems);
    }

    private Tensor PickNeighbor(Tensor table, Tensor ids)
    {
        var pick = torch.randint(0, table.shape[1], new[] { ids.shape[0], 1L }, dtype: ScalarType.Int64, device: ids.device);
        return table.index_select(0, ids).gather(1, pick).squeeze(1);
    }

    /// <summary>The sum of the shards' losses.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        var loss = Shard(student, 0);
        for (int k = 1; k < _o.Shards; k++) loss = loss.Plus(Shard(student, k));
        return loss;
    }

    /// <summary>One term per shard (<see cref="NkdOptions.Shards"/>) of the batch's rows.</summary>
    public IReadOnlyList<LossTerm> Terms(TrainingBatch batch) =>
        Enumerable.Range(0, _o.Shards).Select(k => new LossTerm(_o.Shards == 1 ? "nkd" : $"nkd {k + 1}/{_o.Shards}", student => Shard(student, k))).ToList();

    /// <summary>
    /// The weighted loss of shard k of the batch's rows: users (weight 1) then positive and negative
    /// items (weight 0.5), rows [k n / shards, (k + 1) n / shards) of the n in that order.
    /// </summary>
    private Tensor Shard(EmbeddingLookup student, int k)
    {
        long nU = _users!.shape[0], n = nU + _items!.shape[0];
        long from = k * n / _o.Shards, to = (k + 1) * n / _o.Shards;
        long uCount = Math.Max(0, Math.Min(to, nU) - from), iFrom = Math.Max(from, nU) - nU, iCount = to - Math.Max(from, nU);
        var s = new List<Tensor>(); var sn = new List<Tensor>(); var own = new List<Tensor>(); var neighbour = new List<Tensor>();
        if (uCount > 0)
        {
            own.Add(_users.narrow(0, from, uCount)); neighbour.Add(_nUsers!.narrow(0, from, uCount));
            s.Add(student.Users(own[^1])); sn.Add(student.Users(neighbour[^1]));
        }
        if (iCount > 0)
        {
            own.Add(_items.narrow(0, iFrom, iCount)); neighbour.Add(_nItems!.narrow(0, iFrom, iCount));
            s.Add(student.Items(own[^1])); sn.Add(student.Items(neighbour[^1]));
        }
        if (s.Count == 0) return torch.zeros(1).squeeze();
        Tensor Cat(List<Tensor> parts) => parts.Count == 1 ? parts[0] : torch.cat(parts);
        var t = _ctx.Teacher;
        var (ownIds, neighbourIds) = (Cat(own), Cat(neighbour));
        var mixed = Mix(Cat(s), Cat(sn));
        // The kernel (Kernels/NeighborCosineLoss.cs) computes the same sum; the cosine does not see the
        // projection's length, so it takes the experts' sum before the normalisation.
        var loss = KernelSwitch.Uses(KernelSwitch.NkdLoss) && NeighborCosineLoss.Supports(mixed, t.Users)
            ? NeighborCosineLoss.Compute(Projector.ForwardDirection(mixed), t.Users, t.Items, ownIds, neighbourIds, uCount, _o.Mixing, _o.Alpha, 0.5)
            : CosineDistance(mixed, ownIds, neighbourIds, uCount, iCount);
        return loss * FixedScalars.Of(_o.Lambda);
    }

    /// <summary>
    /// The plain form: sum over the shard's rows of w (1 - cos(mix(t_own, t_neighbour), P(mix(s_own, s_neighbour)))),
    /// w = 1 for users and 0.5 for items, the teacher rows mixed by <see cref="Mix"/> as the student rows are.
    /// </summary>
    private Tensor CosineDistance(Tensor mixed, Tensor ownIds, Tensor neighbourIds, long uCount, long iCount)
    {
        var t = _ctx.Teacher;
        var p = Projector.forward(mixed, null);
        Tensor Teacher(Tensor ids) => uCount == 0 ? t.Items.index_select(0, ids)
            : iCount == 0 ? t.Users.index_select(0, ids)
            : torch.cat(new[] { t.Users.index_select(0, ids.narrow(0, 0, uCount)), t.Items.index_select(0, ids.narrow(0, uCount, iCount)) });
        var distance = FixedScalars.OneMinus(nn.functional.cosine_similarity(Mix(Teacher(ownIds), Teacher(neighbourIds)), p, dim: 1));
        var weights = torch.cat(new[] { torch.ones(uCount), torch.full(iCount, FixedScalars.Of(0.5), dtype: ScalarType.Float32) }).to(distance.device);
        return (distance * weights).sum();
    }

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

    /// <summary>Frees the neighbour tables and the projector.</summary>
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
    /// <summary>
    /// Each row's k nearest other rows [n, k], nearest first (ties: lower id), after centring and, when
    /// <paramref name="pcaDim"/> is below the width, projecting on the top pcaDim principal directions.
    /// k is cut to n - 1; throws <see cref="ArgumentException"/> for fewer than two rows.
    /// <paramref name="maxDistancesPerBatch"/> bounds the distances computed per batch.
    /// </summary>
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
