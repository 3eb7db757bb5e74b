using RecDistill.Models;

namespace RecDistill.Distillation;

/// <summary>Method name plus every method's settings; MKD's three parts can be switched off for the ablation.</summary>
public sealed record DistillationOptions
{
    public string Method { get; init; } = "mkd";
    public NkdOptions Nkd { get; init; } = new();
    public CpdOptions Cpd { get; init; } = new();
    public SldOptions Sld { get; init; } = new();
    public KdOptions Kd { get; init; } = new();
    public RdOptions Rd { get; init; } = new();
    public CdOptions Cd { get; init; } = new();
    public DeOptions De { get; init; } = new();
    public RrdOptions Rrd { get; init; } = new();
    public HtdOptions Htd { get; init; } = new();
    public bool UseNkd { get; init; } = true;
    public bool UseCpd { get; init; } = true;
    public bool UseSld { get; init; } = true;

    public static DistillationOptions Defaults(string method, Backbone backbone) =>
        new() { Method = method, Sld = SldOptions.For(backbone) };
}

/// <summary>Creates a method by name. "scratch" is the student without a teacher (no method).</summary>
public static class DistillationMethods
{
    /// <summary>The student without a teacher, the baselines of SPEC 4.2, then MKD's parts and MKD.</summary>
    public static readonly string[] Names = { "scratch", "kd", "rd", "cd", "de", "rrd", "htd", "nkd", "cpd", "sld", "mkd" };

    /// <summary>MKD with one of its three parts left out (the ablation); each uses MKD's settings for the parts it keeps.</summary>
    public static readonly string[] Ablations = { "nkd+cpd", "nkd+sld", "cpd+sld" };

    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IEnumerable<string> AllNames => Names.Concat(Ablations);

    public static bool IsKnown(string name) => Names.Contains(name.ToLowerInvariant()) || Ablations.Contains(name.ToLowerInvariant());

    /// <summary>MKD's parts a method name stands for ("mkd": all three, "nkd+sld": two), or null for any other method.</summary>
    public static string[]? MkdParts(string name) => name.ToLowerInvariant() switch
    {
        "mkd" => ["nkd", "cpd", "sld"],
        var n when Ablations.Contains(n) => n.Split('+'),
        _ => null,
    };

    public static IDistillationMethod? Create(DistillationOptions o, DistillationContext ctx) => o.Method.ToLowerInvariant() switch
    {
        "scratch" => null,
        "kd" => new KnowledgeDistillation(ctx, o.Kd),
        "rd" => new RankingDistillation(ctx, o.Rd),
        "cd" => new CollaborativeDistillation(ctx, o.Cd),
        "de" => DistillationExperts.Create(ctx, o.De),
        "rrd" => new RelaxedRankingDistillation(ctx, o.Rrd),
        "htd" => new HierarchicalTopologyDistillation(ctx, o.Htd),
        "nkd" => new NeighborDistillation(ctx, o.Nkd),
        "cpd" => new ConsistentPreferenceDistillation(ctx, o.Cpd),
        "sld" => new SoftLabelDistillation(ctx, o.Sld),
        "mkd" => new CompositeDistillation("mkd", new IDistillationMethod?[]
        {
            o.UseNkd ? new NeighborDistillation(ctx, o.Nkd) : null,
            o.UseCpd ? new ConsistentPreferenceDistillation(ctx, o.Cpd) : null,
            o.UseSld ? new SoftLabelDistillation(ctx, o.Sld) : null,
        }.OfType<IDistillationMethod>().ToList()),
        var n when Ablations.Contains(n) => new CompositeDistillation(n, n.Split('+').Select(part => part switch
        {
            "nkd" => (IDistillationMethod)new NeighborDistillation(ctx, o.Nkd),
            "cpd" => new ConsistentPreferenceDistillation(ctx, o.Cpd),
            _ => new SoftLabelDistillation(ctx, o.Sld),
        }).ToList()),
        _ => throw new ArgumentException($"unknown method '{o.Method}': use one of {string.Join(", ", Names.Concat(Ablations))}"),
    };
}
