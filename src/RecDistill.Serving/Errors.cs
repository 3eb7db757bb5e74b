namespace RecDistill.Serving;

/// <summary>A model file that cannot be used: names the file and says why (bad magic, unknown version, corrupt, truncated).</summary>
public sealed class CompactModelFormatException : Exception
{
    /// <summary>The file (or other source) that could not be read as a model.</summary>
    public string FilePath { get; }
    /// <summary>What is wrong with it, without the file name.</summary>
    public string Reason { get; }

    /// <summary>An error for <paramref name="filePath"/>; the message is the path, a colon and <paramref name="reason"/>.</summary>
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
    /// <summary>The user id that was asked for.</summary>
    public string UserId { get; }

    /// <summary>An error for a query by <paramref name="userId"/>, which the model does not hold.</summary>
    public UnknownUserException(string userId)
        : base($"user '{userId}' is not in the model (no train interactions when it was exported)")
    {
        UserId = userId;
    }
}

/// <summary>A query names an item id the exported model does not hold.</summary>
public sealed class UnknownItemException : KeyNotFoundException
{
    /// <summary>The item id that was named.</summary>
    public string ItemId { get; }

    /// <summary>An error for a query naming <paramref name="itemId"/>, which the model does not hold.</summary>
    public UnknownItemException(string itemId)
        : base($"item '{itemId}' is not in the model")
    {
        ItemId = itemId;
    }
}
