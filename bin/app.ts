#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readStackConfig } from '../lib/config.js';
import { ControlTowerValidation, LAMBDA_INSIDE_VPC_RULE_FILE } from '../lib/control-tower-validation.js';
import { LocalyticsExportSyncStack } from '../lib/localytics-export-sync-stack.js';

const app = new App();
const config = readStackConfig(app.node);
new LocalyticsExportSyncStack(app, config.stackName, {
  config,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'Localytics Export Sync: Localytics exports into your S3 data lake',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
// AWS Control Tower's proactive controls; functions outside a VPC are the user's choice (context vpcSubnetIds).
const controlTower = ControlTowerValidation.forPlatform({
  disabledRuleFiles: config.vpcSubnetIds ? [] : [LAMBDA_INSIDE_VPC_RULE_FILE],
});
if (controlTower) Validations.of(app).addPlugins(controlTower);
app.synth();
