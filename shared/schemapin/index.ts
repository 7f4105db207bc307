// SchemaPin tool verification, strict TOFU and static tool review.
export * from "./addresses";
export * from "./api";
export * from "./bundle";
export * from "./canonical";
export * from "./der";
export * from "./discovery";
export * from "./documents";
export * from "./errors";
export * from "./keys";
export * from "./pins";
export * from "./review";
export * from "./service";
export * from "./setup";
export * from "./signatures";
