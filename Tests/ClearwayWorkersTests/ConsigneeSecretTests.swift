import ClearwayDomain
import ClearwayRuntime
import Foundation
import Testing

@testable import ClearwayWorkers

/// Where the enricher's consignee key secret comes from, and the built-in development key.
struct ConsigneeSecretTests {
    @Test func theDevelopmentKeyIsRefusedOutsideADevelopmentRun() throws {
        let environment = ["CLEARWAY_CONSIGNEE_SECRET": ConsigneeKeySecret.developmentText]
        let error = #expect(throws: ConfigurationError.self) {
            try EnricherHandler.consigneeKeySecret(environment: environment)
        }
        let message = error?.description ?? ""
        #expect(message.contains("development key"))
        #expect(message.contains("openssl rand -hex 32"))
        #expect(message.contains("CLEARWAY_DEVELOPMENT_RUN=true"))
        #expect(!message.contains(ConsigneeKeySecret.developmentText))
    }

    @Test func theDevelopmentKeyIsTakenInADevelopmentRun() throws {
        let secret = try EnricherHandler.consigneeKeySecret(environment: [
            "CLEARWAY_CONSIGNEE_SECRET": ConsigneeKeySecret.developmentText, "CLEARWAY_DEVELOPMENT_RUN": "true",
        ])
        #expect(secret.isDevelopmentKey)
    }

    @Test func aDevelopmentRunIsSaidExactly() throws {
        #expect(throws: ConfigurationError.self) {
            try EnricherHandler.consigneeKeySecret(environment: [
                "CLEARWAY_CONSIGNEE_SECRET": ConsigneeKeySecret.developmentText, "CLEARWAY_DEVELOPMENT_RUN": "yes",
            ])
        }
    }

    @Test func aRealSecretIsTakenAndIsNotTheDevelopmentKey() throws {
        let secret = try EnricherHandler.consigneeKeySecret(environment: [
            "CLEARWAY_CONSIGNEE_SECRET": "e2e-secret-of-at-least-16-bytes"
        ])
        #expect(!secret.isDevelopmentKey)
    }

    @Test func theSecretIsReadFromAFileWithoutItsNewline() throws {
        let path = NSTemporaryDirectory() + "consignee-secret-\(UUID().uuidString)"
        try Data("file-secret-of-at-least-16-bytes\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try EnricherHandler.consigneeKeySecret(environment: ["CLEARWAY_CONSIGNEE_SECRET_FILE": path])
        let given = try ConsigneeKeySecret(text: "file-secret-of-at-least-16-bytes")
        let consignee = Consignee(
            name: "Ana Ruiz", line1: "12 Main St", line2: nil, city: "Austin", region: "TX", postalCode: "78701",
            country: "US")
        #expect(try consignee.keys(secret: fromFile) == consignee.keys(secret: given))
    }

    @Test func aMissingSecretOrTwoSourcesAreRefused() {
        #expect(throws: ConfigurationError.self) { try EnricherHandler.consigneeKeySecret(environment: [:]) }
        #expect(throws: ConfigurationError.self) {
            try EnricherHandler.consigneeKeySecret(environment: [
                "CLEARWAY_CONSIGNEE_SECRET": "e2e-secret-of-at-least-16-bytes",
                "CLEARWAY_CONSIGNEE_SECRET_FILE": "/nonexistent",
            ])
        }
    }
}
