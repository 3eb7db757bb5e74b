namespace RecDistill.Data;

/// <summary>One epoch of BPR training samples: every train pair once, shuffled, with sampled negatives.</summary>
public sealed class EpochSamples
{
    /// <summary>Dense user of each sample.</summary>
    public required long[] Users { get; init; }
    /// <summary>Dense train item of each sample.</summary>
    public required long[] Positives { get; init; }
    /// <summary>Row-major [pairs, negativesPerPair].</summary>
    public required long[] Negatives { get; init; }
    /// <summary>Negatives drawn per (user, positive) pair.</summary>
    public required int NegativesPerPair { get; init; }
    /// <summary>Number of samples (train pairs).</summary>
    public int Count => Users.Length;
}

/// <summary>
/// Draws per-epoch samples: negatives uniform over the items a user has not interacted with in train.
/// Deterministic for the <see cref="Random"/> it is given.
/// </summary>
public sealed class TrainingSampler
{
    private readonly int[][] _sortedTrain;
    private readonly int _numItems;
    private readonly long _pairs;

    /// <summary>A sampler over the train items of <paramref name="data"/>; throws if some user has interacted with every item.</summary>
    public TrainingSampler(SplitDataset data)
    {
        _numItems = data.NumItems;
        _sortedTrain = data.Train.Select(t => t.Order().ToArray()).ToArray();
        _pairs = data.TrainCount;
        for (int u = 0; u < _sortedTrain.Length; u++)
            if (_sortedTrain[u].Length >= _numItems)
                throw new ArgumentException($"user {data.UserIds[u]} has interacted with every item: no negative can be sampled");
    }

    /// <summary>Whether the dense user has the dense item in train.</summary>
    public bool Seen(int user, int item) => Array.BinarySearch(_sortedTrain[user], item) >= 0;

    /// <summary>A uniform draw among the items the user has not interacted with in train.</summary>
    public int SampleNegative(int user, Random rng)
    {
        // Rejection sampling: users have seen a small share of the catalogue, so this ends fast.
        while (true)
        {
            int j = rng.Next(_numItems);
            if (!Seen(user, j)) return j;
        }
    }

    /// <summary>One epoch's samples: every train pair once in shuffled order, each with <paramref name="negativesPerPair"/> negatives.</summary>
    public EpochSamples Sample(Random rng, int negativesPerPair = 1)
    {
        if (negativesPerPair < 1) throw new ArgumentOutOfRangeException(nameof(negativesPerPair));
        var order = new int[_pairs];
        var users = new long[_pairs];
        var pos = new long[_pairs];
        long k = 0;
        for (int u = 0; u < _sortedTrain.Length; u++)
            foreach (var i in _sortedTrain[u]) { users[k] = u; pos[k] = i; k++; }
        for (int i = 0; i < order.Length; i++) order[i] = i;
        rng.Shuffle(order);
        var su = new long[_pairs];
        var sp = new long[_pairs];
        var sn = new long[_pairs * negativesPerPair];
        for (long t = 0; t < _pairs; t++)
        {
            int src = order[t];
            su[t] = users[src];
            sp[t] = pos[src];
            for (int n = 0; n < negativesPerPair; n++)
                sn[t * negativesPerPair + n] = SampleNegative((int)users[src], rng);
        }
        return new EpochSamples { Users = su, Positives = sp, Negatives = sn, NegativesPerPair = negativesPerPair };
    }
}
