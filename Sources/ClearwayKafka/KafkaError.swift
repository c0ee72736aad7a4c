import CRdKafka

/// An error from the Kafka client: a librdkafka result code or one of the client's own failures.
///
/// `isRetriable`, `isFatal` and `transactionRequiresAbort` classify it the way librdkafka does,
/// so callers can choose between retrying, aborting the current transaction, or rebuilding the
/// client.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable name of the code.
        public let name: String

        /// A librdkafka result code; `KafkaError.resultCode` holds its number.
        public static let librdkafka = Code(name: "librdkafka")
        /// A configuration property was unknown or its value invalid.
        public static let configuration = Code(name: "configuration")
        /// An operation did not finish within its time bound.
        public static let timeout = Code(name: "timeout")
        /// A transactional operation failed (see the classification flags).
        public static let transaction = Code(name: "transaction")
        /// The client was used after it was shut down.
        public static let shutDown = Code(name: "shutDown")
        /// A topic-level admin operation failed.
        public static let admin = Code(name: "admin")

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// librdkafka's `rd_kafka_resp_err_t` value, when the failure came from librdkafka.
    public var resultCode: Int32?
    /// librdkafka's symbolic name for `resultCode` (e.g. `_MSG_TIMED_OUT`), when there is one.
    public var resultName: String?
    /// A message for a person: what failed and, where known, what to do about it.
    public var message: String
    /// The operation may succeed if repeated as it is.
    public var isRetriable: Bool
    /// The client instance can no longer be used; build a new one.
    public var isFatal: Bool
    /// The current transaction must be aborted before the producer can go on.
    public var transactionRequiresAbort: Bool
    /// Where the error was raised.
    public var file: String
    /// Where the error was raised.
    public var line: UInt

    /// Makes an error.
    public init(
        code: Code, message: String, resultCode: Int32? = nil, resultName: String? = nil,
        isRetriable: Bool = false, isFatal: Bool = false, transactionRequiresAbort: Bool = false,
        file: String = #fileID, line: UInt = #line
    ) {
        self.code = code
        self.message = message
        self.resultCode = resultCode
        self.resultName = resultName
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.transactionRequiresAbort = transactionRequiresAbort
        self.file = file
        self.line = line
    }

    /// librdkafka's local producer queue had no room (`_QUEUE_FULL`, from `trySend`): send again
    /// once deliveries have drained some (`send` waits for that itself).
    public var isQueueFull: Bool { resultCode == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue }

    /// The client refused the call in its current state (`_STATE`): a transactional producer
    /// refuses records once its transaction has failed (a produce request failed for good), until
    /// the transaction is aborted.
    public var isInvalidState: Bool { resultCode == RD_KAFKA_RESP_ERR__STATE.rawValue }

    /// The broker refused the record itself, for good: too large for the topic
    /// (`MSG_SIZE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`), or a record it will never accept
    /// (`INVALID_RECORD`, `INVALID_MSG`, `INVALID_TIMESTAMP`). Sending it again fails again; other
    /// records still go through.
    public var isRecordRefusal: Bool {
        guard let resultCode else { return false }
        return [
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
            RD_KAFKA_RESP_ERR_INVALID_RECORD,
            RD_KAFKA_RESP_ERR_INVALID_MSG, RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
        ].contains { $0.rawValue == resultCode }
    }

    public var description: String {
        var text = "KafkaError.\(code)"
        if let resultName { text += "(\(resultName))" }
        text += ": \(message)"
        if isFatal {
            text += " [fatal]"
        } else if transactionRequiresAbort {
            text += " [abort transaction]"
        } else if isRetriable {
            text += " [retriable]"
        }
        return text
    }
}

extension KafkaError {
    /// An error for a librdkafka result code, classified by what librdkafka documents of it.
    static func result(
        _ err: rd_kafka_resp_err_t, context: String? = nil, file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(err))
        return KafkaError(
            code: err == RD_KAFKA_RESP_ERR__TIMED_OUT ? .timeout : .librdkafka,
            message: context.map { "\($0): \(text)" } ?? text,
            resultCode: err.rawValue, resultName: String(cString: rd_kafka_err2name(err)),
            isRetriable: err.isRetriable, isFatal: err == RD_KAFKA_RESP_ERR__FATAL,
            file: file, line: line)
    }

    /// An error for an `rd_kafka_error_t`, which it destroys.
    static func consuming(
        _ error: OpaquePointer, code: Code = .librdkafka, context: String? = nil,
        file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let text = String(cString: rd_kafka_error_string(error))
        let err = rd_kafka_error_code(error)
        return KafkaError(
            code: code, message: context.map { "\($0): \(text)" } ?? text,
            resultCode: err.rawValue, resultName: String(cString: rd_kafka_error_name(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            transactionRequiresAbort: rd_kafka_error_txn_requires_abort(error) != 0,
            file: file, line: line)
    }

    /// An admin operation's per-topic failure.
    static func admin(_ err: rd_kafka_resp_err_t, context: String, file: String = #fileID, line: UInt = #line)
        -> KafkaError
    {
        var error = result(err, context: context, file: file, line: line)
        error.code = .admin
        return error
    }

    static func shutDown(_ what: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code: .shutDown, message: "\(what) was shut down", file: file, line: line)
    }
}

extension rd_kafka_resp_err_t {
    /// Transient conditions worth retrying, per librdkafka's and Kafka's error documentation.
    var isRetriable: Bool {
        switch self {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
            RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
            RD_KAFKA_RESP_ERR__WAIT_COORD, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
            RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
            return true
        default:
            return false
        }
    }
}
