using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// HTD settings (Kang et al. 2021). SPEC gives no lambda: 1e-2 was chosen on CiteULike's validation
/// split (BPR, students d=20, seed 1) among 1e-3, 1e-2 and 1e-1 (results/citeulike/htd-lambda/).
/// </summary>
public sealed record HtdOptions
{
    /// <summary>Number of groups, one expert each (30).</summary>
    public int Groups { get; init; } = 30;
    /// <summary>Weight of the entity-level (within-group) term; 1 - alpha goes to the group level.</summary>
    public double Alpha { get; init; } = 0.5;
    /// <summary>Weight lambda of the HTD loss (1e-2).</summary>
    public double Lambda { get; init; } = 1e-2;
    /// <summary>Gumbel-softmax temperature of the group selection at epoch 1 (1.0).</summary>
    public double SelectionTemperature { get; init; } = 1.0;
    /// <summary>Factor applied to the selection temperature per epoch (0.98).</summary>
    public double SelectionTemperatureDecay { get; init; } = 0.98;
    /// <summary>Lowest selection temperature (0.05).</summary>
    public double SelectionTemperatureFloor { get; init; } = 0.05;
}

/// <summary>
/// HTD: entities (the batch's distinct users, and its distinct items) are assigned to groups by a
/// DE-like selection of experts on the teacher vector; each group's expert projects the student
/// vector. Group level: the cosine similarities of every entity to every group's prototype (mean
/// vector) match between teacher and projected student. Entity level: within each group, the
/// entity-entity cosine similarities match. Loss = alpha * entity + (1 - alpha) * group, squared errors.
/// </summary>
public sealed class HierarchicalTopologyDistillation : IDistillationMethod
{
    private readonly DistillationContext _ctx;
    private readonly HtdOptions _o;
    private Tensor? _users, _items;

    /// <summary>HTD on the context's teacher; throws <see cref="ArgumentException"/> for no group or alpha outside [0, 1].</summary>
    public HierarchicalTopologyDistillation(DistillationContext ctx, HtdOptions options)
    {
        if (options.Groups < 1) throw new ArgumentException("HTD needs at least one group");
        if (options.Alpha is < 0 or > 1) throw new ArgumentException("HTD alpha must lie in [0, 1]");
        _ctx = ctx; _o = options;
        int dS = ctx.StudentDim, dT = ctx.Teacher.Dim;
        Projector = new ExpertProjector("htd", dS, dT, options.Groups, Math.Max(1, (dS + dT) / 2), 0.0,
            ExpertCombination.TeacherGumbelSelection);
        Projector.to(ctx.Device);
        Projector.train();
    }

    /// <summary>The projector: one expert d_S -> (d_S + d_T) / 2 -> d_T per group, selected on the teacher vector.</summary>
    public ExpertProjector Projector { get; }
    /// <inheritdoc/>
    public string Name => "htd";
    /// <summary>The projector's parameters (experts and selection net).</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Projector.parameters();
    /// <summary>Empty: HTD reports no diagnostics.</summary>
    public IReadOnlyDictionary<string, double> EpochDiagnostics { get; } = new Dictionary<string, double>();

    /// <summary>Anneals the selection temperature.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng) =>
        Projector.AnnealTemperature(epoch, _o.SelectionTemperature, _o.SelectionTemperatureDecay, _o.SelectionTemperatureFloor);

    /// <summary>None: the loss reads the batch's distinct users and items only.</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _users = batch.DistinctUsers;
        _items = batch.DistinctItems;
        return (null, null);
    }

    /// <summary>The users' topology loss plus the items', each times lambda.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student) => UserLoss(student).Plus(ItemLoss(student));

    /// <summary>Users and items as two terms: their topologies are independent.</summary>
    public IReadOnlyList<LossTerm> Terms(TrainingBatch batch) =>
        [new LossTerm("htd users", UserLoss), new LossTerm("htd items", ItemLoss)];

    private Tensor UserLoss(EmbeddingLookup student) =>
        Topology(_ctx.Teacher.Users.index_select(0, _users!), student.Users(_users!)) * FixedScalars.Of(_o.Lambda);

    private Tensor ItemLoss(EmbeddingLookup student) =>
        Topology(_ctx.Teacher.Items.index_select(0, _items!), student.Items(_items!)) * FixedScalars.Of(_o.Lambda);

    /// <summary>The HTD loss of one set of entities: teacher vectors [n, d_T], student vectors [n, d_S].</summary>
    public Tensor Topology(Tensor teacher, Tensor student)
    {
        var (projected, group) = Projector.ForwardSelected(student, teacher);
        bool kernel = KernelSwitch.Uses(KernelSwitch.HtdLoss) && TopologyLoss.Supports(teacher, projected);
        if (!kernel && (SameGroupPairs ?? teacher.device_type != DeviceType.CPU))
            return TopologyBySameGroupPairs(teacher, projected, group, _o.Groups, _o.Alpha);
        var (order, sizes) = TensorOps.GroupByLabel(group, _o.Groups);
        return kernel
            ? TopologyLoss.Compute(teacher, projected, order, sizes, _o.Alpha)
            : TopologyByGroups(teacher, projected, group, order, sizes, _o.Alpha);
    }

    /// <summary>
    /// <see cref="TopologyLoss"/> through libtorch calls: teacher and projected rows [n, d], each row's
    /// group, the rows in group order and the groups' sizes. The entity level runs one block per
    /// group: on the CPU the n x n form masked to same-group pairs costs the number of groups times more.
    /// </summary>
    internal static Tensor TopologyByGroups(Tensor teacher, Tensor projected, Tensor group, Tensor order, long[] sizes, double alpha) =>
        BothLevels(teacher, projected, group, torch.tensor(sizes).to(teacher.dtype, teacher.device), alpha,
            (tn, sn) => EntityLossPerGroup(tn, sn, order, sizes));

    /// <summary>
    /// The same loss with the entity level over the n x n similarities masked to same-group pairs, in
    /// blocks of rows (at most 2^24 similarities each), and the groups' sizes counted on the device: a few dozen GPU calls and no copy
    /// to the host, where the per-group form makes a dozen calls per group (30 groups of users and 30
    /// of items per batch) after reading the sizes back.
    /// </summary>
    internal static Tensor TopologyBySameGroupPairs(Tensor teacher, Tensor projected, Tensor group, int groups, double alpha,
        long blockRows = 0) =>
        BothLevels(teacher, projected, group, torch.bincount(group, minlength: groups).to(teacher.dtype), alpha,
            (tn, sn) => EntityLossSameGroupPairs(tn, sn, group, blockRows));

    /// <summary>Both levels given the groups' sizes [G] (on the rows' device) and the entity level's form.</summary>
    private static Tensor BothLevels(Tensor teacher, Tensor projected, Tensor group, Tensor counts, double alpha,
        Func<Tensor, Tensor, Tensor> entityLevel)
    {
        var present = counts.gt(FixedScalars.Zero);
        var safe = counts.clamp_min(FixedScalars.One).unsqueeze(1);
        var tn = nn.functional.normalize(teacher, dim: 1);
        var sn = nn.functional.normalize(projected, dim: 1);
        // Group level: entity-to-prototype cosine similarities, over the groups that have members;
        // prototypes as sums by group (index_add: O(n d), where the one-hot product was O(n G d)).
        Tensor GroupSums(Tensor rows) =>
            torch.zeros(counts.shape[0], rows.shape[1], dtype: rows.dtype, device: rows.device).index_add(0, group, rows, FixedScalars.One);
        var protoT = nn.functional.normalize(GroupSums(teacher) / safe, dim: 1);    // [G, d_T]
        var protoS = nn.functional.normalize(GroupSums(projected) / safe, dim: 1);
        var groupDiff = (tn.matmul(protoT.t()) - sn.matmul(protoS.t())) * present.to(teacher.dtype);
        var groupLoss = groupDiff.Squared().sum();
        // Entity level: entity-entity cosine similarities within each group.
        var entityLoss = entityLevel(tn, sn);
        return (entityLoss * FixedScalars.Of(alpha)).Plus(groupLoss * FixedScalars.Of(1 - alpha));
    }

    /// <summary>Similarities per block of the masked n x n form (2^24 floats, 64 MB): blocks of rows x n.</summary>
    private const long PairBlockElements = 1L << 24;

    /// <summary>
    /// sum over pairs (i, j) of the same group of (tn_i . tn_j - sn_i . sn_j)^2: the per-group blocks'
    /// sum (a lone entity's only pair is itself, 1 - 1). blockRows 0: as many rows as fit PairBlockElements.
    /// </summary>
    private static Tensor EntityLossSameGroupPairs(Tensor tn, Tensor sn, Tensor group, long blockRows)
    {
        long n = tn.shape[0];
        if (blockRows <= 0) blockRows = Math.Max(1, PairBlockElements / Math.Max(1, n));
        Tensor? loss = null;
        for (long from = 0; from < n; from += blockRows)
        {
            long rows = Math.Min(blockRows, n - from);
            var (t, s, g) = (tn.narrow(0, from, rows), sn.narrow(0, from, rows), group.narrow(0, from, rows));
            var same = g.unsqueeze(1).eq(group.unsqueeze(0)).to(tn.dtype);
            var block = (t.matmul(tn.t()) - s.matmul(sn.t())).Squared().mul(same).sum();
            loss = loss is null ? block : loss.Plus(block);
        }
        return loss ?? torch.zeros(1, dtype: tn.dtype, device: tn.device).squeeze();
    }

    /// <summary>
    /// The libtorch path's entity level: true over same-group pairs of the n x n similarities, false per
    /// group. Default (null): true off the CPU, false on it. Tests set it to compare the two.
    /// </summary>
    public bool? SameGroupPairs { get; set; }

    private static Tensor EntityLossPerGroup(Tensor tn, Tensor sn, Tensor order, long[] sizes)
    {
        var entityLoss = torch.zeros(1, dtype: tn.dtype, device: tn.device).squeeze();
        long offset = 0;
        foreach (long size in sizes)
        {
            // A lone entity's only pair is itself: both similarities are 1, the error is 0.
            if (size > 1)
            {
                var members = order.narrow(0, offset, size);
                entityLoss = entityLoss.Plus(GroupBlockLoss(tn.index_select(0, members), sn.index_select(0, members)));
            }
            offset += size;
        }
        return entityLoss;
    }

    /// <summary>
    /// ||tg tg^T - sg sg^T||^2 over one group's n normalised teacher and projected vectors [n, d]. Past
    /// 2d members it is computed from d x d products instead, ||tg^T tg||^2 - 2 ||tg^T sg||^2 +
    /// ||sg^T sg||^2 (the same value: ||A B^T||^2 = tr(A^T A B^T B)): O(n d^2) instead of O(n^2 d) work
    /// and no n x n blocks. Late in a run the groups collapse into a few large ones (thousands of
    /// items at d = 200), which had made HTD's epochs three times slower than its first ones.
    /// </summary>
    public static Tensor GroupBlockLoss(Tensor tg, Tensor sg, bool? gramForm = null)
    {
        if (!(gramForm ?? UsesGramForm(tg.shape[0], tg.shape[1])))
            return (tg.matmul(tg.t()) - sg.matmul(sg.t())).Squared().sum();
        var teacher = tg.t().matmul(tg).Squared().sum();
        var cross = tg.t().matmul(sg).Squared().sum();
        var student = sg.t().matmul(sg).Squared().sum();
        return (teacher - cross * FixedScalars.Of(2)).Plus(student);
    }

    /// <summary>Whether a group of this many members of this width is computed from d x d products.</summary>
    public static bool UsesGramForm(long members, long dim) => members > 2 * dim;

    /// <summary>Frees the projector.</summary>
    public void Dispose() => Projector.Dispose();
}
