namespace RecDistill.Data;

/// <summary>Per-user train/validation/test splitting and dense re-indexing.</summary>
public static class DataSplitter
{
    // Guards floor(0.29 * 100) = 28 style float error; far below any real fractional part.
    private const double Epsilon = 1e-9;

    /// <summary>
    /// Cut points for a user with <paramref name="n"/> interactions: train = [0, TrainEnd) with
    /// TrainEnd = max(1, floor(trainRatio n)); valid = [TrainEnd, ValidEnd) with ValidEnd = floor((trainRatio + validRatio) n);
    /// test = the rest.
    /// </summary>
    public static (int TrainEnd, int ValidEnd) CutPoints(int n, double trainRatio = 0.8, double validRatio = 0.1)
    {
        CheckRatios(trainRatio, validRatio);
        if (n <= 0) return (0, 0);
        int train = Math.Clamp((int)Math.Floor(trainRatio * n + Epsilon), 1, n);
        int valid = Math.Clamp((int)Math.Floor((trainRatio + validRatio) * n + Epsilon), train, n);
        return (train, valid);
    }

    /// <summary>Refuses ratios out of range, naming them as the caller calls them (its arguments, or DataOptions' properties).</summary>
    internal static void CheckRatios(double trainRatio, double validRatio, string trainName = "trainRatio", string validName = "validRatio")
    {
        if (!(trainRatio > 0 && trainRatio <= 1))
            throw new ArgumentOutOfRangeException(trainName, trainRatio, "train ratio must be in (0, 1]");
        if (!(validRatio >= 0 && trainRatio + validRatio <= 1 + Epsilon))
            throw new ArgumentOutOfRangeException(validName, validRatio, "valid ratio must be >= 0 and train + valid ratio <= 1");
    }

    /// <summary>
    /// Splits each user's interactions (the rows should be cleaned and free of duplicates) and re-indexes users and
    /// items densely in <see cref="IdOrder"/>. Order keeps each user's row order; Random shuffles each user's rows with
    /// <c>new Random(seed)</c>, users taken in dense order; Time sorts each user's rows by timestamp (stable).
    /// </summary>
    /// <exception cref="ArgumentException">Time split on rows without timestamps.</exception>
    public static SplitDataset Split(string name, IReadOnlyList<RawInteraction> rows, SplitMethod method,
        double trainRatio = 0.8, double validRatio = 0.1, int seed = 0, List<string>? log = null)
    {
        CheckRatios(trainRatio, validRatio);
        if (method == SplitMethod.Time)
        {
            foreach (var r in rows)
                if (r.Timestamp is null)
                    throw new ArgumentException($"time split needs a timestamp on every interaction; line {r.Line} has none", nameof(method));
        }

        var itemIds = rows.Select(r => r.Item).Distinct(StringComparer.Ordinal).Order(IdOrder.Instance).ToArray();
        var itemIndex = DenseIndex(itemIds);
        var perUser = GroupByUser(rows);
        var userIds = perUser.Keys.Order(IdOrder.Instance).ToArray();
        int numUsers = userIds.Length;
        var train = new int[numUsers][];
        var valid = new int[numUsers][];
        var test = new int[numUsers][];
        var rng = method == SplitMethod.Random ? new Random(seed) : null;
        for (int du = 0; du < numUsers; du++)
        {
            var list = perUser[userIds[du]];
            if (method == SplitMethod.Random)
            {
                for (int i = list.Count - 1; i > 0; i--)
                {
                    int j = rng!.Next(i + 1);
                    (list[i], list[j]) = (list[j], list[i]);
                }
            }
            else if (method == SplitMethod.Time)
            {
                list = list.OrderBy(r => r.Timestamp!.Value).ToList();
            }
            var (a, b) = CutPoints(list.Count, trainRatio, validRatio);
            train[du] = Dense(list, 0, a, itemIndex);
            valid[du] = Dense(list, a, b, itemIndex);
            test[du] = Dense(list, b, list.Count, itemIndex);
        }
        var result = new SplitDataset
        {
            Name = name, UserIds = userIds, ItemIds = itemIds,
            Train = train, Valid = valid, Test = test, Log = log ?? new List<string>(),
        };
        result.Log.Add(FormattableString.Invariant(
            $"split {method.ToString().ToLowerInvariant()} ({trainRatio:0.###}/{validRatio:0.###}/{1 - trainRatio - validRatio:0.###}{(method == SplitMethod.Random ? $", seed {seed}" : "")}): train {result.TrainCount:N0}, valid {result.ValidCount:N0}, test {result.TestCount:N0}"));
        return result;
    }

    /// <summary>
    /// Builds a dataset from given train/valid/test rows (each de-duplicated). Ids are re-indexed over the union of
    /// the three parts in <see cref="IdOrder"/>; users without any train interaction are dropped (with their valid/test rows)
    /// because they cannot be learned or evaluated fairly. Each part keeps its row order.
    /// </summary>
    public static SplitDataset FromPreSplit(string name, IReadOnlyList<RawInteraction> train,
        IReadOnlyList<RawInteraction> valid, IReadOnlyList<RawInteraction> test, List<string>? log = null)
    {
        log ??= new List<string>();
        var trainUsers = train.Select(r => r.User).ToHashSet(StringComparer.Ordinal);
        var droppedUsers = valid.Concat(test).Select(r => r.User).Where(u => !trainUsers.Contains(u)).ToHashSet(StringComparer.Ordinal);
        if (droppedUsers.Count > 0)
        {
            int droppedRows = valid.Concat(test).Count(r => droppedUsers.Contains(r.User));
            log.Add(FormattableString.Invariant($"removed {droppedUsers.Count:N0} users with no train interaction (and their {droppedRows:N0} valid/test interactions)"));
            valid = valid.Where(r => trainUsers.Contains(r.User)).ToList();
            test = test.Where(r => trainUsers.Contains(r.User)).ToList();
        }
        var userIds = trainUsers.Order(IdOrder.Instance).ToArray();
        var itemIds = train.Concat(valid).Concat(test).Select(r => r.Item).Distinct(StringComparer.Ordinal).Order(IdOrder.Instance).ToArray();
        var userIndex = DenseIndex(userIds);
        var itemIndex = DenseIndex(itemIds);
        var result = new SplitDataset
        {
            Name = name, UserIds = userIds, ItemIds = itemIds,
            Train = Part(train), Valid = Part(valid), Test = Part(test), Log = log,
        };
        log.Add(FormattableString.Invariant($"pre-split: train {result.TrainCount:N0}, valid {result.ValidCount:N0}, test {result.TestCount:N0}"));
        return result;

        int[][] Part(IReadOnlyList<RawInteraction> rows)
        {
            var lists = new List<int>[userIds.Length];
            for (int i = 0; i < lists.Length; i++) lists[i] = new List<int>();
            foreach (var r in rows)
                lists[userIndex[r.User]].Add(itemIndex[r.Item]);
            return lists.Select(l => l.ToArray()).ToArray();
        }
    }

    private static Dictionary<string, int> DenseIndex(string[] sortedIds)
    {
        var index = new Dictionary<string, int>(sortedIds.Length, StringComparer.Ordinal);
        for (int i = 0; i < sortedIds.Length; i++) index[sortedIds[i]] = i;
        return index;
    }

    private static Dictionary<string, List<RawInteraction>> GroupByUser(IReadOnlyList<RawInteraction> rows)
    {
        var perUser = new Dictionary<string, List<RawInteraction>>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            if (!perUser.TryGetValue(r.User, out var list))
                perUser[r.User] = list = new List<RawInteraction>();
            list.Add(r);
        }
        return perUser;
    }

    private static int[] Dense(List<RawInteraction> list, int from, int to, Dictionary<string, int> itemIndex)
    {
        var a = new int[to - from];
        for (int k = from; k < to; k++) a[k - from] = itemIndex[list[k].Item];
        return a;
    }
}
