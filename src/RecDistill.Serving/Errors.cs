namespace RecDistill.Serving;

/// <summary>A model file that cannot be used: names the file and says why (bad magic, unknown version, corrupt, truncated).</summary>
public sealed class CompactModelFormatException : Exception
{
    public string FilePath { get; }
    public string Reason { get; }

    public CompactModelFormatException(string filePath, string reason)
        : base($"{filePath}: {reason}")
    {
        FilePath = filePath;
        Reason = reason;
    }
}

/// <summary>
/// A query for a user id the exported model does not hold (the user had no train interactions, or came
/// after the export). The recommender never guesses: callers choose <see cref="Recommender.Popular"/> or
/// fold the user in from their items (<see cref="Recommender.RecommendFromItems"/>).
/// </summary>
public sealed class UnknownUserException : KeyNotFoundException
{
    public string UserId { get; }

    public UnknownUserException(string userId)
        : base($"user '{userId}' is not in the model (no train interactions when it was exported)")
    {
        UserId = userId;
    }
}

/// <summary>A query names an item id the exported model does not hold.</summary>
public sealed class UnknownItemException : KeyNotFoundException
{
    public string ItemId { get; }

    public UnknownItemException(string itemId)
        : base($"item '{itemId}' is not in the model")
    {
        ItemId = itemId;
    }
}
