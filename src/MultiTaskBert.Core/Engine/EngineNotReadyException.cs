namespace MultiTaskBert.Core.Engine;

/// <summary>No bundle is loaded yet (start-up has not finished).</summary>
public sealed class EngineNotReadyException() : Exception("The model is still loading.");
