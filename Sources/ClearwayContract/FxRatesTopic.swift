import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `fx-rates.v1` (compacted): certified exchange rates to USD, daily or quarterly.
    ///
    /// - Value: ``ExchangeRate`` (ClearwayDomain, `CurrencyConversion.swift`); schema
    ///   `schemas/fx-rates.v1.schema.json`.
    /// - Key: `currency@date`, or `currency@YYYY-Qn` for a quarterly rate
    ///   (``ExchangeRate/tableKey``). Partitions: 1.
    /// - Written by: outside (the rates feed). Read by: the enricher, which keeps it whole as a
    ///   reference table.
    public static let fxRates = TopicDeclaration("fx-rates.v1", partitions: 1, compacted: true)
}
