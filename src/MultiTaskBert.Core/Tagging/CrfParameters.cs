namespace MultiTaskBert.Core.Tagging;

/// <summary>A tagging head's CRF as the manifest stores it: transitions[from][to], start[tag], end[tag] (validated square).</summary>
public sealed record CrfParameters(float[][] Transitions, float[] Start, float[] End);
