import ClearwayRuntime

/// Clearway's topics: the public contract other teams subscribe to, and the internal topics
/// between the workers. Each topic has its own file in this folder (`OrdersTopic.swift`, …) with
/// what it carries, its key, its partitions, who writes and reads it, and its wire types; its
/// JSON Schema is `schemas/<name>.schema.json`. Names are without the deployment's prefix
/// (`CLEARWAY_TOPIC_PREFIX`).
public enum Topics {
    /// The dead letters: the runtime's convention, the same for every worker (`StandardTopics.dlq`).
    public static let dlq = StandardTopics.dlq

    /// The state changelogs of the stateful workers (`<worker>.changelog`, compacted, partitioned
    /// like their input; `WorkerDefinition.changelog`). A test checks that every worker's declared
    /// topics are among `all`.
    public static let changelogs: [TopicDeclaration] = [
        TopicDeclaration("\(WorkerName.enricher.rawValue).changelog", partitions: orders.partitions, compacted: true),
        TopicDeclaration(
            "\(WorkerName.aggregator.rawValue).changelog", partitions: ordersScreened.partitions, compacted: true),
        TopicDeclaration(
            "\(WorkerName.structuring.rawValue).changelog", partitions: releasedByAddress.partitions, compacted: true),
        TopicDeclaration(
            "\(WorkerName.manifestBuilder.rawValue).changelog", partitions: releasedByConveyance.partitions,
            compacted: true),
        TopicDeclaration(
            "\(WorkerName.filerSim.rawValue).changelog", partitions: manifests.partitions, compacted: true),
        TopicDeclaration(
            "\(WorkerName.erpWriteback.rawValue).changelog", partitions: entryResults.partitions, compacted: true),
    ]

    /// All of them: what `clearway topics apply` creates.
    public static let all: [TopicDeclaration] =
        [
            orders, catalog, fxRates, ordersEnriched, ordersScreened, shipmentsCleared, manifests, entryResults,
            erpWriteback, exceptions, alerts, reroutes, dlq, releasedByAddress, releasedByConveyance,
        ] + changelogs
}
