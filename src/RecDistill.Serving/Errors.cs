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
/// A query for a raw user id the exported model does not hold (the user had no train interactions,
/// or came after the export). The recommender never guesses: callers that want a cold-start answer
/// ask <see cref="Recommender.Popular"/> instead.
/// </summary>
public sealed class UnknownUserException : KeyNotFoundException
{
    public long UserId { get; }

    public UnknownUserException(long userId)
        : base($"user {userId} is not in the model (no train interactions when it was exported)")
    {
        UserId = userId;
    }
}
