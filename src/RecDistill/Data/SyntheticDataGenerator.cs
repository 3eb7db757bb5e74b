namespace RecDistill.Data;

/// <summary>Settings of <see cref="SyntheticDataGenerator"/>.</summary>
public sealed record SyntheticOptions
{
    /// <summary>Number of users generated.</summary>
    public int Users { get; init; } = 1500;
    /// <summary>Number of items generated.</summary>
    public int Items { get; init; } = 2500;
    /// <summary>Mean interactions per user; counts are 5 plus a geometric draw, so the tail is long as in real data.</summary>
    public double AvgInteractionsPerUser { get; init; } = 30;
    /// <summary>Fewest interactions a user gets (at most the number of items).</summary>
    public int MinInteractionsPerUser { get; init; } = 5;
    /// <summary>Rank of the hidden preference structure: a model with far fewer dimensions cannot represent it.</summary>
    public int LatentDim { get; init; } = 32;
    /// <summary>
    /// Taste dimension f is weighted exp(-FactorDecay f) (0 = all equal). A decaying spectrum, as in real data, lets
    /// small models catch the main directions while larger ones keep gaining; a flat one is hard to learn from few rows.
    /// </summary>
    public double FactorDecay { get; init; } = 0.07;
    /// <summary>Item popularity follows rank^-exponent (Zipf-like); 0 turns popularity off.</summary>
    public double PopularityExponent { get; init; } = 1.0;
    /// <summary>Softmax temperature on the taste score (unit variance); lower means sharper, more learnable tastes.</summary>
    public double Temperature { get; init; } = 0.25;
    /// <summary>Fraction of interactions drawn from popularity alone, ignoring taste.</summary>
    public double Noise { get; init; } = 0.05;
    /// <summary>
    /// Seed of the generator: the same options give the same data. 0 by default; the CLI passes its --seed
    /// (default 2023), so set 2023 here for the CLI's default data.
    /// </summary>
    public int Seed { get; init; } = 0;

    internal void Validate()
    {
        if (Users < 1) throw new ArgumentOutOfRangeException(nameof(Users), Users, "need at least one user");
        if (Items < 2) throw new ArgumentOutOfRangeException(nameof(Items), Items, "need at least two items");
        if (MinInteractionsPerUser < 1 || MinInteractionsPerUser > Items)
            throw new ArgumentOutOfRangeException(nameof(MinInteractionsPerUser), MinInteractionsPerUser, "must be between 1 and the number of items");
        if (!(AvgInteractionsPerUser >= MinInteractionsPerUser))
            throw new ArgumentOutOfRangeException(nameof(AvgInteractionsPerUser), AvgInteractionsPerUser, "must be at least MinInteractionsPerUser");
        if (LatentDim < 1) throw new ArgumentOutOfRangeException(nameof(LatentDim), LatentDim, "must be positive");
        if (!(PopularityExponent >= 0) || double.IsInfinity(PopularityExponent))
            throw new ArgumentOutOfRangeException(nameof(PopularityExponent), PopularityExponent, "must be a finite number >= 0");
        if (!(FactorDecay >= 0) || double.IsInfinity(FactorDecay))
            throw new ArgumentOutOfRangeException(nameof(FactorDecay), FactorDecay, "must be a finite number >= 0");
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "must be a finite number > 0");
        if (!(Noise >= 0 && Noise <= 1)) throw new ArgumentOutOfRangeException(nameof(Noise), Noise, "must be in [0, 1]");
    }
}

/// <summary>
/// Generates implicit feedback with a known low-rank structure: Gaussian user and item factors, a power-law item
/// popularity, and per-user draws of distinct items with probability proportional to exp(score / T) * popularity.
/// </summary>
public static class SyntheticDataGenerator
{
    /// <summary>
    /// Deterministic for a given <see cref="SyntheticOptions"/> (one <c>new Random(Seed)</c>, scalar arithmetic).
    /// Rows come user by user (ids "0".."Users-1", items "0".."Items-1"), each user's items in random order with
    /// increasing timestamps, so Order, Time and Random splits all see the same distribution.
    /// </summary>
    public static RawDataset Generate(SyntheticOptions options)
    {
        options.Validate();
        int users = options.Users, items = options.Items, dim = options.LatentDim;
        var rng = new Random(options.Seed);

        var userF = new double[users * dim];
        var itemF = new double[items * dim];
        for (int k = 0; k < userF.Length; k++) userF[k] = Gaussian(rng);
        for (int k = 0; k < itemF.Length; k++) itemF[k] = Gaussian(rng);
        // Weighting the user side alone is enough to weight the score; renormalised so scores keep unit variance.
        var weight = Enumerable.Range(0, dim).Select(f => Math.Exp(-options.FactorDecay * f)).ToArray();
        double norm = Math.Sqrt(dim / weight.Sum(w => w * w));
        for (int k = 0; k < userF.Length; k++) userF[k] *= weight[k % dim] * norm;

        // Popularity ranks are a random permutation so popularity is independent of taste.
        var rank = Enumerable.Range(1, items).ToArray();
        rng.Shuffle(rank);
        var logPop = new double[items];
        var popCdf = new double[items];
        double total = 0;
        for (int i = 0; i < items; i++)
        {
            logPop[i] = -options.PopularityExponent * Math.Log(rank[i]);
            total += Math.Exp(logPop[i]);
            popCdf[i] = total;
        }

        // Unit-variance scores: with dim-independent scale the temperature means the same at every LatentDim.
        double scoreScale = 1.0 / (Math.Sqrt(dim) * options.Temperature);
        double extraMean = options.AvgInteractionsPerUser - options.MinInteractionsPerUser;
        double geomLog = extraMean > 0 ? Math.Log(extraMean / (extraMean + 1)) : 0;

        var rows = new List<RawInteraction>((int)Math.Min(int.MaxValue / 2, (long)(users * options.AvgInteractionsPerUser * 1.1)));
        string[] userIds = NumberIds(users), itemIds = NumberIds(items);
        var top = new PriorityQueue<int, double>();
        var order = new int[items];
        var chosen = new HashSet<int>();
        var picks = new List<int>();
        long line = 0;
        for (int u = 0; u < users; u++)
        {
            int extra = 0;
            if (extraMean > 0)
            {
                double g = Math.Floor(Math.Log(1 - rng.NextDouble()) / geomLog);
                extra = (int)Math.Min(g, items);
            }
            int n = Math.Min(items, options.MinInteractionsPerUser + extra);

            // Gumbel-top-k: the n largest perturbed logits are n draws without replacement from softmax(logits).
            // Only the set matters (the order is shuffled below), so a size-n min-heap replaces a full sort.
            top.Clear();
            int uo = u * dim;
            for (int i = 0; i < items; i++)
            {
                int io = i * dim;
                double dot = 0;
                for (int f = 0; f < dim; f++) dot += userF[uo + f] * itemF[io + f];
                double key = dot * scoreScale + logPop[i] - Math.Log(-Math.Log(1 - rng.NextDouble()));
                if (top.Count < n) top.Enqueue(i, key);
                else if (top.TryPeek(out _, out double least) && key > least) top.DequeueEnqueue(i, key);
            }
            int m = 0;
            while (top.TryDequeue(out int best, out _)) order[m++] = best;
            chosen.Clear();
            picks.Clear();
            for (int k = 0; k < n; k++)
            {
                int item = order[k];
                if (options.Noise > 0 && rng.NextDouble() < options.Noise)
                {
                    // Bounded retries: a popularity draw may hit an item already taken.
                    for (int attempt = 0; attempt < 32; attempt++)
                    {
                        int cand = SampleCdf(popCdf, rng.NextDouble() * total);
                        if (!chosen.Contains(cand)) { item = cand; break; }
                    }
                    if (chosen.Contains(item))
                        continue;
                }
                if (chosen.Add(item)) picks.Add(item);
            }
            for (int k = 0; chosen.Count < n && k < m; k++)
                if (chosen.Add(order[k])) picks.Add(order[k]);
            for (int i = 0; chosen.Count < n && i < items; i++)
                if (chosen.Add(i)) picks.Add(i);

            var shuffled = picks.ToArray();
            rng.Shuffle(shuffled);
            long time = 1_500_000_000L + rng.Next(0, 365 * 86400);
            foreach (int item in shuffled)
            {
                time += rng.Next(1, 3 * 86400);
                rows.Add(new RawInteraction(userIds[u], itemIds[item], null, time, ++line));
            }
        }
        return new RawDataset { Source = "synthetic", Interactions = rows };
    }

    private static string[] NumberIds(int count) =>
        Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    private static int SampleCdf(double[] cdf, double x)
    {
        int idx = Array.BinarySearch(cdf, x);
        if (idx < 0) idx = ~idx;
        return Math.Min(idx, cdf.Length - 1);
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble();
        double u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
