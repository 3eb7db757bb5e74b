namespace RecDistill;

/// <summary>A mistake in what was asked for (a missing run directory, a bad option value): one clear line for the user.</summary>
public sealed class UserErrorException(string message) : Exception(message);
